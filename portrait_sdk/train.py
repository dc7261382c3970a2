"""The trainer behind ``portrait-sdk train RECIPE``: resumable, distributed, with validation every epoch.

Layout of a run directory::

    checkpoints/        tf.train.Checkpoint (model, optimizer, step, trainer state) every ``checkpoint_every``
                        steps and at each epoch end; the newest two are kept
    best.keras          the weights with the best validation metric so far (written atomically)
    metrics.json        per-epoch history, the best epoch and its validation metrics
    curves.png          loss and validation-metric curves
    logs/               TensorBoard scalars

Resuming (``resume=True``) restores the newest readable checkpoint (one cut short by a crash is skipped with a
warning, and the one before it used): model and optimizer state, the global step, and the
trainer's history, which lives *inside* the checkpoint (a string variable) so the two can never disagree. The
data stream is a pure function of (seed, epoch, index), so the run continues with exactly the batches it would
have seen. Training runs under a ``tf.distribute`` strategy: the default one on one device, MirroredStrategy over
several local GPUs, MultiWorkerMirroredStrategy when ``TF_CONFIG`` is set.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from portrait_sdk.calibration import calibrate_temperature
from portrait_sdk.data import open_dataset, pipeline, validate
from portrait_sdk.files import IMAGE_EXTENSIONS, atomic_write
from portrait_sdk.keras_env import keras, tf
from portrait_sdk.metrics import MattingMeter, SegmentationMeter
from portrait_sdk.models import build_model, get_spec
from portrait_sdk.models.registry import contract_path
from portrait_sdk.objectives import make_objective
from portrait_sdk.data import augment
from portrait_sdk.recipe import Recipe, RecipeError


# Conv and dense kernels are decayed (AdamW's weight_decay and the coupled l2); BN, PReLU, biases and depthwise
# kernels are not (ExtremeC3Net's rule).
NOT_DECAYED = ("bn", "batch_norm", "prelu", "bias", "depthwise")
TEMPERATURE_BATCHES = 16  # training batches [model] calibrate_temperature fits the temperature on
LAST_EPOCHS = 5  # metrics.json's "last_epochs": mean and spread of the validation metric over these


def default_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirrored under TF_CONFIG, Mirrored over several GPUs, else the default (one device)."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def checkpoint_problem(path: str) -> str | None:
    """Why the checkpoint ``path`` (a ``ckpt-N`` prefix) cannot be restored, or None: every tensor is read back,
    so a truncated or corrupt data file shows here rather than half-way through a restore."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: "Read less bytes than requested"
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
    return None


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay (x ``decay`` every ``period`` steps) or cosine annealing to 0 over ``cosine`` steps, from step
    ``start`` at rate ``base``.

    The parameters are variables of ``state`` (a ``tf.Module`` the trainer checkpoints), so a resumed run keeps
    the schedule it was started with even when the recipe has changed since; ``Trainer.fit(reschedule=True)``
    replaces it with the recipe's, continuing from the rate reached.
    """

    NAMES = ("base", "decay", "period", "cosine", "start")

    def __init__(self, **values):
        self.state = tf.Module(name="lr_schedule")
        for name in self.NAMES:
            setattr(self.state, name, tf.Variable(float(values[name]), trainable=False, dtype=tf.float32,
                                                  name=name))

    def values(self) -> dict:
        return {name: float(getattr(self.state, name).numpy()) for name in self.NAMES}

    def assign(self, **values) -> None:
        for name, value in values.items():
            getattr(self.state, name).assign(value)

    def __call__(self, step):
        s = self.state
        steps = tf.maximum(tf.cast(step, tf.float32) - s.start, 0.0)
        stepped = s.base * tf.pow(s.decay, tf.math.floor(steps / tf.maximum(s.period, 1.0)))
        annealed = s.base * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(steps / tf.maximum(s.cosine, 1.0), 1.0)))
        return tf.where(s.cosine > 0, annealed, tf.where(s.period > 0, stepped, s.base))

    def get_config(self):
        return self.values()


def precise_batch_norm(model, batches) -> int:
    """Set every BN layer's moving statistics to the average of its batch statistics over ``batches`` (model
    inputs), with the current weights (PreciseBN, Wu & Johnson 2021). Moving averages trail the weights by ~1 /
    (1 - momentum) steps: early in a fine-tuning, or with few steps an epoch, inference-mode BN then normalises by
    statistics of older weights and a model that segments well in training mode predicts nothing. Returns the
    number of batches used."""
    norms = [layer for layer in model.submodules if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [bn.momentum for bn in norms]
    count = 0
    try:
        for count, batch in enumerate(batches, start=1):
            for bn in norms:  # momentum (n - 1) / n: the running mean of the n batches so far
                bn.momentum = (count - 1) / count
            model(batch, training=True)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
    return count


def is_better(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value > best if mode == "max" else value < best)


class Trainer:
    """Trains one recipe into ``run_dir``; ``fit(resume=...)`` runs to the recipe's last epoch."""

    def __init__(self, recipe: Recipe, run_dir: str | os.PathLike, strategy: tf.distribute.Strategy | None = None,
                 progress: bool = True, model_transform: Callable[[keras.Model], keras.Model] | None = None):
        """``model_transform`` maps the model built from the recipe (with its init weights) to the one trained,
        under the strategy's scope: ``portrait_sdk.quantize.quantize_for_training`` for QAT. The model before
        the transform stays available as ``base_model``."""
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.strategy = strategy or default_strategy()
        self.progress = progress
        self.spec = get_spec(recipe.model.name)
        self.objective = make_objective(recipe.loss.objective, recipe.loss.weights, self.spec.auxiliary_heads,
                                        **recipe.loss.options)
        self.augment_config = self._augment_config()
        self.train_data, self.val_data = self._open_datasets()  # checked before any graph is built
        cfg = recipe.train
        self.steps_per_epoch = cfg.steps_per_epoch or max(1, len(self.train_data) // cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        keras.utils.set_random_seed(cfg.seed)  # same seed, same initial weights: runs are reproducible
        with self.strategy.scope():
            self.base_model = self._build_model()
            self.start_weights = self.base_model.get_weights()  # the warm start, for [train] wise_ft
            self.model = model_transform(self.base_model) if model_transform else self.base_model
            self.optimizer = self._build_optimizer()
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.state = tf.Variable("{}", dtype=tf.string, trainable=False, name="trainer_state")
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step,
                                              state=self.state, schedule=self.schedule.state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.run_dir / "checkpoints", max_to_keep=2)
        self.history: list[dict] = []
        self.best: dict | None = None
        self.schedule_settings = self._schedule_settings()  # what the schedule was built from, checkpointed

    # -- set-up ---------------------------------------------------------------------------------------------
    def _open_datasets(self):
        data = self.recipe.data
        train = open_dataset(data.path("train"))
        val = open_dataset(data.path("val"))
        if data.val_filter:
            val = val.filter(**data.val_filter)
        train, val = (validate(ds, skip_bad=data.skip_bad).dataset for ds in (train, val))
        for path in data.extra_paths(self.recipe.path):
            extra = validate(open_dataset(path), skip_bad=data.skip_bad).dataset
            train = train.subset(train.samples + extra.samples, f"{train.name}+{extra.name}")
        if data.oversample:
            match = {key: value for key, value in data.oversample.items() if key != "times"}
            train = train.oversample(data.oversample["times"], **match)
        if data.limit_train:
            train = train.subset(train.samples[:data.limit_train], f"{train.name}[:{data.limit_train}]")
        if data.limit_val:
            val = val.subset(val.samples[:data.limit_val], f"{val.name}[:{data.limit_val}]")
        return train, val

    def _augment_config(self) -> pipeline.AugmentConfig:
        """The recipe's augmentation: the model's resize mode (stretch or letterbox) for every view, validation
        included, plus the ``[data] augment``, ``composite`` and ``prior`` overrides."""
        data = self.recipe.data

        def tuples(table: dict) -> dict:  # TOML arrays -> the configs' tuples (nested: the prior's kinds)
            return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                    for k, v in table.items()}

        fit = "stretch" if self.spec.resize_mode == "stretch" else "pad"
        try:
            return pipeline.AugmentConfig(deform=augment.DeformConfig(**{"fit": fit, **tuples(data.augment)}),
                                          composite=augment.CompositeConfig(**tuples(data.composite)),
                                          prior=augment.PriorConfig(**tuples(data.prior)))
        except (TypeError, ValueError) as error:
            raise RecipeError(f"{self.recipe.path}: [data] augment / composite / prior: {error}") from None

    def _build_model(self):
        cfg = self.recipe.model
        model = build_model(cfg.name, input_size=tuple(cfg.input_size), input_channels=cfg.input_channels or None,
                            training_heads=True, **cfg.options)
        if self.recipe.train.init_weights:
            path = Path(self.recipe.train.init_weights)
            path = path if path.is_absolute() else self.recipe.path.parent / path
            if path.suffix == ".keras":
                # Copy by layer name, so an inference-only file warm-starts a model with training heads.
                targets = {layer.name: layer for layer in model.layers}
                for layer in keras.models.load_model(path, compile=False).layers:
                    if layer.weights and layer.name in targets:
                        targets[layer.name].set_weights(layer.get_weights())
            else:
                model.load_weights(path, skip_mismatch=True, by_name=True)
        elif cfg.pretrained:
            self._import_pretrained(model)
        if cfg.calibrate_temperature:
            temperature = calibrate_temperature(model, self._dataset(training=True).take(TEMPERATURE_BATCHES))
            if self.progress:
                print(f"mask logits divided by the fitted temperature {temperature:.3g}", flush=True)
        return model

    def _import_pretrained(self, model) -> None:
        """``[model] pretrained``: weights from a published .tflite by the architecture's mapping; batch norm the
        file had folded is re-estimated on training images (``tflite_weights.reestimate_batch_norm``)."""
        from portrait_sdk.tflite_weights import load_pretrained, reestimate_batch_norm

        cfg = self.recipe.model
        if self.spec.pretrained_layers is None:
            raise RecipeError(f"{self.recipe.path}: [model] pretrained: {cfg.name} has no mapping from a .tflite "
                              "file's layers")
        path = cfg.pretrained_path(self.recipe.path, self.recipe.data.root)
        folded = load_pretrained(model, path, self.spec.name)
        if folded:
            reestimate_batch_norm(model, folded, self.image_batches(8))
        if self.progress:
            print(f"imported {path.name} ({len(folded)} batch norms re-estimated)", flush=True)

    def _recipe_schedule(self, start: int = 0, base: float | None = None) -> dict:
        """The recipe's learning-rate schedule as ``LearningRate`` values, beginning at step ``start``."""
        cfg = self.recipe.train
        cosine = self.total_steps - start if cfg.lr_schedule == "cosine" else 0
        period = cfg.lr_decay_epochs * self.steps_per_epoch if cfg.lr_schedule == "step" else 0
        return {"base": cfg.learning_rate if base is None else base, "decay": cfg.lr_decay, "period": period,
                "cosine": cosine, "start": start}

    def _build_optimizer(self):
        self.schedule = LearningRate(**self._recipe_schedule())
        optimizer = keras.optimizers.AdamW(learning_rate=self.schedule, weight_decay=self.recipe.train.weight_decay)
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
        return optimizer

    def _decayed_kernels(self) -> list[tf.Variable]:
        return [v for v in self.model.trainable_variables if not any(key in v.name for key in NOT_DECAYED)]

    def image_batches(self, count: int, start_step: int = 0):
        """``count`` batches of augmented training images (model inputs, never validation ones): the statistics
        that batch norm re-estimation, PreciseBN and QAT range calibration are computed on."""
        return (features["image"] for features, _ in self._dataset(training=True, start_step=start_step).take(count))

    def _dataset(self, training: bool, start_step: int = 0):
        cfg, data = self.recipe.train, self.recipe.data
        return pipeline.make_dataset(
            self.train_data if training else self.val_data, size=tuple(self.recipe.model.input_size),
            batch_size=cfg.batch_size if training else 1, training=training, seed=cfg.seed,
            mode=data.mode if training or data.mode in ("video", "matting") else "segmentation",
            backgrounds=self._backgrounds() if training else None, config=self.augment_config,
            boundary_width=4 if training and self.recipe.loss.objective == "portraitnet" else None,
            start=start_step * cfg.batch_size if training else 0)

    def _backgrounds(self):
        folder = self.recipe.data.backgrounds
        if not folder:
            return None
        folder = Path(folder) if Path(folder).is_absolute() else self.recipe.data.path("train").parents[1] / folder
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"{folder}: no background images ({' / '.join(IMAGE_EXTENSIONS)})")
        return files

    # -- steps ----------------------------------------------------------------------------------------------
    def _make_train_step(self):
        replicas = self.strategy.num_replicas_in_sync
        l2, kernels = self.recipe.train.l2, self._decayed_kernels()

        def step_fn(features, targets):
            with tf.GradientTape() as tape:
                terms = self.objective(self.model, features, targets, training=True)
                loss = terms["loss"]
                if l2:  # coupled L2 (PyTorch Adam's weight_decay): its gradient l2 * w joins the loss's
                    terms["l2"] = 0.5 * l2 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in kernels])
                    loss += terms["l2"]
                loss /= replicas
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            return terms

        @tf.function
        def train_step(iterator):
            terms = self.strategy.run(step_fn, args=next(iterator))
            self.step.assign_add(1)
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in terms.items()}

        return train_step

    def evaluate(self, model: keras.Model | None = None) -> dict:
        """Validation metrics at the model's input resolution (IoU etc. for masks, SAD etc. for mattes) of the
        trained model, or of ``model`` (e.g. ``base_model``, to compare a QAT model with its float source)."""
        model = self.model if model is None else model
        meter_type = MattingMeter if self.spec.task == "matting" else SegmentationMeter
        meter, column = meter_type(), self.recipe.data.val_groups
        groups = [dict(sample.meta).get(column, "?") for sample in self.val_data.samples] if column else []
        group_meters = {group: meter_type() for group in groups}
        predict = tf.function(lambda x: self.objective.probability(model(x, training=False)))
        index = 0
        for features, targets in self._dataset(training=False):  # batches of 1, in dataset order
            prob = predict(features["image"]).numpy()
            for p, t in zip(prob, targets["mask"].numpy()[..., 0]):
                meter.update(p, t)
                if groups:
                    group_meters[groups[index]].update(p, t)
                index += 1
        result = meter.result()
        for group, group_meter in sorted(group_meters.items()):  # e.g. iou_vikram: [data] val_groups = "source"
            result.update({f"{key}_{group}": value for key, value in group_meter.result().items()
                           if key != "images"})
        return result

    # -- the loop -------------------------------------------------------------------------------------------
    def _save_state(self):
        self.state.assign(json.dumps({"history": self.history, "best": self.best,
                                      "schedule": self.schedule_settings}))

    def _restore(self) -> int:
        """Restore the newest readable checkpoint (0 when there is none); an unreadable newer one is skipped with a
        warning, so a checkpoint cut short by a crash or a full disk costs the steps since the one before it."""
        if not self.manager.checkpoints:
            return 0
        for path in reversed(self.manager.checkpoints):
            problem = checkpoint_problem(path)
            if problem is None:
                break
            warnings.warn(f"{path}: unreadable checkpoint ({problem}); resuming from the one before it", stacklevel=2)
        else:
            raise RuntimeError(f"{self.run_dir / 'checkpoints'}: no readable checkpoint to resume from; remove the "
                               "folder to start over")
        self.checkpoint.restore(path)
        state = json.loads(self.state.numpy().decode())
        self.history, self.best = state.get("history", []), state.get("best")
        self.schedule_settings = state.get("schedule")
        return int(self.step.numpy())

    def _schedule_settings(self) -> dict:
        cfg = self.recipe.train
        if cfg.lr_schedule == "cosine":  # annealed over the run: its length is part of the schedule
            return {"lr_schedule": "cosine", "learning_rate": cfg.learning_rate, "epochs": cfg.epochs}
        return {"lr_schedule": "step", "learning_rate": cfg.learning_rate, "lr_decay": cfg.lr_decay,
                "lr_decay_epochs": cfg.lr_decay_epochs}

    def _check_schedule(self, start: int, reschedule: bool) -> None:
        """After a resume: when the recipe's schedule settings differ from the ones the run started with, the run's
        own schedule (restored from the checkpoint) is kept with a warning; ``reschedule`` switches to the
        recipe's from the rate reached at ``start``."""
        started = self.schedule_settings or self._schedule_settings()  # older runs did not record theirs
        if started == self._schedule_settings():
            return
        changed = ", ".join(f"{k} {started.get(k)} -> {v}" for k, v in self._schedule_settings().items()
                            if started.get(k) != v)
        rate = float(self.schedule(start))
        if not reschedule:
            warnings.warn(f"{self.recipe.path}: learning-rate settings changed since this run started ({changed}); "
                          f"keeping the run's schedule (rate now {rate:.3g}). Resume with --reschedule to follow "
                          "the recipe's from here on.", stacklevel=3)
            return
        self.schedule.assign(**self._recipe_schedule(start=start, base=rate))
        self.schedule_settings = self._schedule_settings()
        print(f"--reschedule ({changed}): the recipe's schedule from step {start}, starting at the rate reached "
              f"({rate:.3g})", flush=True)

    def fit(self, resume: bool = False, reschedule: bool = False) -> dict:
        """Train to the last epoch; returns the best epoch's record. ``resume`` continues the newest checkpoint
        with the learning-rate schedule it was started with (``reschedule``: the recipe's, from the rate reached)."""
        if not resume and self.manager.latest_checkpoint:
            raise FileExistsError(f"{self.run_dir} already holds a run; pass resume=True (--resume) to continue it "
                                  "or choose another output folder")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_contract()
        start = self._restore() if resume else 0
        if resume:
            self._check_schedule(start, reschedule)
        cfg = self.recipe.train
        writer = tf.summary.create_file_writer(str(self.run_dir / "logs"))
        train_step = self._make_train_step()
        iterator = iter(self.strategy.experimental_distribute_dataset(self._dataset(True, start)))
        step = start
        while step < self.total_steps:
            epoch = step // self.steps_per_epoch
            epoch_end = (epoch + 1) * self.steps_per_epoch
            sums, count, began = {}, 0, time.perf_counter()
            bar = _progress(self.progress, epoch, cfg.epochs, self.steps_per_epoch, step - epoch * self.steps_per_epoch)
            while step < epoch_end:
                terms = {k: float(v) for k, v in train_step(iterator).items()}
                step += 1
                count += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                if not math.isfinite(terms["loss"]):
                    raise FloatingPointError(f"loss became {terms['loss']} at step {step}; lower the learning rate")
                rate = count * cfg.batch_size / (time.perf_counter() - began)
                bar.update(loss=terms["loss"], rate=rate)
                with writer.as_default(step=step):
                    for k, v in terms.items():
                        tf.summary.scalar(f"train/{k}", v)
                if step % cfg.checkpoint_every == 0 and step < epoch_end:
                    self._save_state()
                    self.manager.save(checkpoint_number=step)
            bar.close()
            if cfg.precise_bn:
                precise_batch_norm(self.model, self.image_batches(cfg.precise_bn, start_step=step))
            record = {"epoch": epoch + 1, "step": step, **{f"train_{k}": v / count for k, v in sums.items()},
                      **{f"val_{k}": v for k, v in self.evaluate().items()}}
            self.history.append(record)
            with writer.as_default(step=step):
                for k, v in record.items():
                    if k.startswith("val_"):
                        tf.summary.scalar(f"val/{k[4:]}", v)
            value = record[f"val_{cfg.metric}"]
            if is_better(value, None if self.best is None else self.best[f"val_{cfg.metric}"], cfg.metric_mode):
                self.best = record
                atomic_write(self.run_dir / "best.keras", self.model.save, keep_suffix=True)
            self._save_state()
            self.manager.save(checkpoint_number=step)
            self._write_reports()
            if self.progress:
                print(f"epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items()
                                                         if k.startswith("val_") or k == "train_loss"), flush=True)
        if cfg.wise_ft and self.best is not None and "wise_ft" not in self.best and self.model is self.base_model:
            self._blend_with_start(cfg.wise_ft)
        return self.best or {}

    def _blend_with_start(self, alphas) -> None:
        """``[train] wise_ft``: validate (1 - a) * start + a * best for each a; a better blend replaces
        best.keras, and ``best["wise_ft"]`` records a (every blend's metrics go into metrics.json)."""
        cfg = self.recipe.train
        best = keras.models.load_model(self.run_dir / "best.keras", compile=False).get_weights()
        self.blends, chosen = [], best
        for alpha in alphas:
            blend = [(1 - alpha) * s + alpha * b for s, b in zip(self.start_weights, best)]
            self.model.set_weights(blend)
            record = {"alpha": alpha, **{f"val_{k}": v for k, v in self.evaluate().items()}}
            self.blends.append(record)
            if self.progress:
                print(f"wise_ft a={alpha}: val_{cfg.metric}={record[f'val_{cfg.metric}']:.4g}", flush=True)
            if is_better(record[f"val_{cfg.metric}"], self.best[f"val_{cfg.metric}"], cfg.metric_mode):
                self.best, chosen = {**self.best, **record, "wise_ft": alpha}, blend
                atomic_write(self.run_dir / "best.keras", self.model.save, keep_suffix=True)
        self.best.setdefault("wise_ft", 1.0)
        self.model.set_weights(chosen)
        self._save_state()
        self._write_reports()

    def _write_contract(self) -> None:
        """``best.contract.json`` beside ``best.keras``: the spec's contract for these weights (architecture,
        options, input, resize, normalization, heads), which ``portrait-sdk export`` copies into the card. Copy
        it with the weights (``training/weights/<model>.contract.json``)."""
        cfg = self.recipe.model
        contract = self.spec.contract(cfg.input_size, cfg.input_channels or None, cfg.options)
        if self.recipe.data.mode != "matting":  # the fit validation used (a recipe's [data] augment may set it)
            contract["resize"] = "letterbox" if self.augment_config.deform.fit == "pad" else "stretch"
        atomic_write(contract_path(self.run_dir / "best.keras"),
                     lambda p: p.write_text(json.dumps(contract, indent=2) + "\n"))

    def _write_reports(self):
        metric = f"val_{self.recipe.train.metric}"
        last = [record[metric] for record in self.history[-LAST_EPOCHS:]]
        report = {"recipe": self.recipe.path.name, "model": self.recipe.model.name, "metric": self.recipe.train.metric,
                  "best": self.best,
                  # the best epoch is one draw; the last ones say where the run actually is
                  "last_epochs": {"epochs": len(last), "mean": float(np.mean(last)) if last else None,
                                  "std": float(np.std(last)) if last else None},
                  "history": self.history, "wise_ft": getattr(self, "blends", [])}
        atomic_write(self.run_dir / "metrics.json", lambda p: p.write_text(json.dumps(report, indent=2)))
        atomic_write(self.run_dir / "curves.png", lambda p: plot_curves(self.history, self.recipe.train.metric, p),
                     keep_suffix=True)


def plot_curves(history: list[dict], metric: str, path: Path) -> None:
    """Training loss and the validation metric per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    for key in sorted(k for k in history[0] if k.startswith("train_")):
        ax_loss.plot(epochs, [r[key] for r in history], label=key[6:])
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss", yscale="log")
    ax_loss.legend()
    ax_metric.plot(epochs, [r[f"val_{metric}"] for r in history], marker="o")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


class _progress:
    """A tqdm bar with live loss and throughput (silent when disabled)."""

    def __init__(self, enabled: bool, epoch: int, epochs: int, total: int, done: int):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="step",
                            dynamic_ncols=True)

    def update(self, loss: float, rate: float):
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.1f}")
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
