"""Quantization-aware training (QAT): fake-quantize a trained float model, fine-tune it, compare the two.

``quantize_for_training`` wraps a tf_keras model with tensorflow-model-optimization's default 8-bit scheme,
which mimics TFLite's int8 kernels: symmetric per-channel conv weights, asymmetric per-tensor activations,
batch norm folded into the conv before it, ReLU fused. tfmot's registry leaves out several layers our
architectures use (it would refuse the model); ``layer_configs()`` covers them the way the converter lays them out
(Keras layers here, each architecture's own layers in its spec's ``custom_layers``):

- ``PReLU``: output quantized (PRELU is its own int8 kernel, not fused into the conv before it). Its alpha is
  left to the converter: a fake-quantized alpha breaks the pattern that turns Keras' ``relu(x) - alpha *
  relu(-x)`` into PRELU, which then runs in float between DEQUANTIZE and QUANTIZE;
- ``BatchNormalization`` that does not follow a conv (after a concatenation, an addition or an upsampling):
  the converter turns it into an int8 MUL (+ ADD), so its output gets its own range;
- ``Multiply``, ``Subtract``, ``Minimum`` (SINet's SE scale and information-blocking gate): output quantized;
- SINet's ``ChannelSlice``: nothing to quantize, a slice keeps its input's int8 values and scale;
- the selfie model's ``HardSwish``: output quantized (HARD_SWISH is its own int8 kernel);
- the hair model's ``MaxUnpool2x``: output quantized (its slices, products and reshapes run as int8 ops).

``unquantized_layers`` checks a QAT model for layers whose output would reach the int8 graph without a range;
``float_ops`` checks a converted file for ops left in float. Both are empty for all six architectures
(``tests/test_quantize.py``).

``run_qat`` is the fine-tuning run behind ``portrait-sdk qat training/<model>.toml``: the float recipe's data and
objective, the trained float weights, a few epochs at a small constant learning rate (the recipe's [qat] table),
and a report of the float and the QAT validation metric. Its run folder holds, besides the trainer's files::

    qat_report.json     float vs QAT metrics (the QAT ones from the best epoch)
    qat_model.keras     the QAT inference graph (training heads dropped) at the best epoch, for the int8
                        exporter (``portrait_sdk.export``, precision "qat_int8")

QAT models save to and load from ``.keras`` files (``load_qat_model``, or ``load_model`` inside ``quantize_scope``),
which tfmot 0.8.1 alone cannot do: see ``QuantizeLayer`` and ``quantize_for_training``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
from pathlib import Path

import numpy as np

from portrait_sdk.keras_env import keras, tf  # sets TF_USE_LEGACY_KERAS before tfmot is imported

import tensorflow_model_optimization as tfmot  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer  # noqa: E402

from portrait_sdk.files import atomic_write  # noqa: E402
from portrait_sdk.models import get_spec  # noqa: E402  (registers the zoo)
from portrait_sdk.models.registry import custom_layers  # noqa: E402
from portrait_sdk.recipe import QatConfig, Recipe, RecipeError, load_recipe  # noqa: E402

tfq = tfmot.quantization.keras
layers = keras.layers

QAT_MODEL_FILE = "qat_model.keras"
REPORT_FILE = "qat_report.json"
CALIBRATION_BATCHES = 16  # training batches that set the QAT model's activation ranges (``calibrate_ranges``)


@keras.utils.register_keras_serializable(package="portrait_sdk")
class OutputQuantizeConfig(tfq.QuantizeConfig):
    """Fake-quantize a layer's output only, as TFLite quantizes activations (8 bits, asymmetric, per tensor,
    range tracked by a moving average during training). ``quantize_output=False`` quantizes nothing."""

    def __init__(self, quantize_output: bool = True):
        self.quantize_output = quantize_output

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        if not self.quantize_output:
            return []
        return [tfq.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                      narrow_range=False)]

    def get_config(self):
        return {"quantize_output": self.quantize_output}


# Keras layers tfmot's default 8-bit registry does not know, and whether their output gets its own range.
KERAS_LAYER_CONFIGS: dict[type, bool] = {
    layers.PReLU: True,
    layers.BatchNormalization: True,
    layers.Multiply: True,
    layers.Subtract: True,
    layers.Minimum: True,
}


def layer_configs() -> dict[type, bool]:
    """``KERAS_LAYER_CONFIGS`` plus the architectures' own layers, as each model spec declares them
    (``ModelSpec.custom_layers``)."""
    return {**KERAS_LAYER_CONFIGS, **custom_layers()}


class _Registry(tfq.default_8bit.Default8BitQuantizeRegistry):
    """tfmot's default registry plus ``layer_configs()``.

    tfmot asks the registry only about layers its graph transforms left without a config, so a batch norm after
    a conv is still folded into it; only the other batch norms get an output range of their own.
    """

    def supports(self, layer) -> bool:
        return type(layer) in layer_configs() or super().supports(layer)

    def get_quantize_config(self, layer):
        configs = layer_configs()
        if type(layer) in configs:
            return OutputQuantizeConfig(configs[type(layer)])
        return super().get_quantize_config(layer)


class QuantizeScheme(tfq.default_8bit.Default8BitQuantizeScheme):
    """The default 8-bit scheme (its transforms and quantizers) with the registry extended by ``layer_configs()``."""

    def get_quantize_registry(self):
        return _Registry()


class QuantizeLayer(quantize_layer.QuantizeLayer):
    """tfmot's input quantizer, made loadable: its ``build`` does not mark the layer built, so Keras' loader
    (``build_from_config``, then the first call) builds it twice and the saved variables no longer fit.
    Same class name, so that files name it as tfmot does and ``quantize_scope`` substitutes it on loading."""

    def build(self, input_shape):
        super().build(input_shape)
        self.built = True


@contextlib.contextmanager
def quantize_scope():
    """Scope in which Keras deserializes our QAT models: ``with quantize_scope(): keras.models.load_model(p)``.

    tfmot's scope, then ours inside it: ``tfq.quantize_scope(extra)`` would let its own QuantizeLayer win.
    """
    ours = {"OutputQuantizeConfig": OutputQuantizeConfig, "QuantizeLayer": QuantizeLayer,
            **{cls.__name__: cls for cls in custom_layers()}}
    with tfq.quantize_scope(), keras.utils.custom_object_scope(ours):
        yield


def quantize_for_training(model: keras.Model) -> keras.Model:
    """A QAT copy of a trained float functional model: same weights, same outputs (dict outputs included),
    every layer wrapped for 8-bit fake quantization. Build it under the training strategy's scope.

    The model tfmot returns is cloned (each layer re-created from its config), as ``load_model`` re-creates it:
    tfmot's fresh wrappers track their quantized kernels twice, and a ``.keras`` file saved from them does not
    load back.
    """
    with quantize_scope():
        wrapped = tfq.quantize_apply(tfq.quantize_annotate_model(model), scheme=QuantizeScheme())
        qat = keras.models.clone_model(wrapped)
    qat.set_weights(wrapped.get_weights())
    equalize_depthwise_kernels(qat)
    return qat


def _consumers(model: keras.Model) -> dict[str, list]:
    """Each layer's name -> the layers that take its output."""
    consumers: dict[str, list] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in layer.inbound_nodes:
            for source in tf.nest.flatten(node.inbound_layers):
                if source.name in consumers:
                    consumers[source.name].append(layer)
    return consumers


def _variables(layer) -> dict:
    """A layer's variables by their own name: ``quant_conv/kernel_min:0`` -> ``kernel_min``."""
    return {w.name.split("/")[-1].split(":")[0]: w for w in layer.weights}


def equalize_depthwise_kernels(model: keras.Model) -> int:
    """Scale every channel of each depthwise kernel that feeds a batch norm alone up to the kernel's largest
    |weight|, and that batch norm's moving statistics with it. Returns the number of kernels changed.

    The model computes the same function (batch norm divides the scale out again: in inference mode by the
    scaled statistics, in training mode by the batch's), but its depthwise kernels survive tfmot's fake
    quantization, which is per tensor for depthwise kernels (TFLite's int8 kernels are per channel). Weights
    imported from an int8 MobileNetV2 file carry its folded batch norm, so their channels differ by up to 100x
    (the nail segmenter's first depthwise kernel reaches 56), and one range for all left the small channels a
    quantization level or two. Scaling up (never down) keeps the variance positive.
    """
    consumers = _consumers(model)
    changed = 0
    for layer in model.layers:
        depthwise = getattr(layer, "layer", layer)
        users = consumers[layer.name]
        if not (isinstance(depthwise, layers.DepthwiseConv2D) and not depthwise.use_bias and len(users) == 1):
            continue
        norm = getattr(users[0], "layer", users[0])
        if not isinstance(norm, layers.BatchNormalization):
            continue
        # The wrapper's variable: in a QAT wrapper the layer's attribute is the fake-quantized kernel tensor.
        variable = _variables(layer)["depthwise_kernel"]
        kernel = variable.numpy()
        peaks = np.abs(kernel).reshape(-1, kernel.shape[2] * kernel.shape[3]).max(axis=0)
        scale = np.where(peaks > 0, peaks.max() / np.maximum(peaks, 1e-12), 1.0).astype("float32")
        variable.assign(kernel * scale.reshape(kernel.shape[2], kernel.shape[3]))
        norm.moving_mean.assign(norm.moving_mean.numpy() * scale)
        # (var + eps) * scale^2 - eps: inference-mode batch norm then divides by exactly scale times as much
        norm.moving_variance.assign((norm.moving_variance.numpy() + norm.epsilon) * scale**2 - norm.epsilon)
        changed += 1
    return changed


# Activation range variables: a QuantizeLayer's ``<name>_min`` / ``<name>_max`` (the model input's range), a
# wrapper's ``output_*`` (its layer's output) and ``post_activation_*`` (the activation inside its layer, which in
# the float model is that layer's output too).
_RANGE_SUFFIXES = (("output_min", "output_max"), ("post_activation_min", "post_activation_max"))


def _range_variables(layer) -> list[tuple[tf.Variable, tf.Variable]]:
    by_name = _variables(layer)
    if isinstance(layer, quantize_layer.QuantizeLayer):
        suffixes = ((f"{layer.name}_min", f"{layer.name}_max"),)
    else:
        suffixes = _RANGE_SUFFIXES
    return [(by_name[low], by_name[high]) for low, high in suffixes if low in by_name and high in by_name]


def calibrate_ranges(float_model: keras.Model, qat_model: keras.Model, batches) -> int:
    """Set every activation range of a fresh QAT model (``quantize_for_training(float_model)``) to the min / max
    that the float model's matching tensor reaches over ``batches`` (model inputs), as TFLite's post-training
    calibration does, and every weight range to its weight's. Returns the number of ranges set.

    tfmot starts each range at [-6, 6] and moves it by an exponential moving average whose decay (0.999) it
    fixes, so a fine-tuning of a few hundred steps never leaves that start: every activation beyond +-6 is
    clipped. MobileNetV2's ReLU6 maps fit, but its linear bottlenecks and logits do not (the ImageNet-imported
    nail segmenter's reach +-68), and such a model predicted nothing after one QAT epoch (val IoU 0.79 -> 0.05).
    """
    probes, targets = [], []
    float_layers = {layer.name: layer for layer in float_model.layers}
    for layer in qat_model.layers:
        ranges = _range_variables(layer)
        if not ranges:
            continue
        source = getattr(layer, "layer", layer).name
        if isinstance(layer, quantize_layer.QuantizeLayer):
            tensor = float_model.inputs[0]
        elif source in float_layers:
            tensor = float_layers[source].output
        else:
            continue
        probes.append(tensor)
        targets.append(ranges)
    probe = keras.Model(float_model.inputs, probes)

    @tf.function
    def extremes(images):
        outputs = probe(images, training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        return tf.stack([tf.reduce_min(o) for o in outputs]), tf.stack([tf.reduce_max(o) for o in outputs])

    low = high = None
    for images in batches:
        batch_low, batch_high = (t.numpy() for t in extremes(images))
        low = batch_low if low is None else np.minimum(low, batch_low)
        high = batch_high if high is None else np.maximum(high, batch_high)
    if low is None:
        raise ValueError("calibrate_ranges: no calibration batches")
    for ranges, tensor_low, tensor_high in zip(targets, low, high):
        for min_var, max_var in ranges:  # TFLite's ranges always hold 0
            min_var.assign(min(float(tensor_low), 0.0))
            max_var.assign(max(float(tensor_high), 0.0))
    return sum(len(ranges) for ranges in targets) + _set_weight_ranges(qat_model)


def _set_weight_ranges(qat_model: keras.Model) -> int:
    """Each fake-quantized weight's symmetric range from the weight itself (per output channel where the range
    variable has one entry per channel), as tfmot's first training step would set it; inference before that
    step would clip the weights to tfmot's initial [-6, 6]."""
    count = 0
    for layer in qat_model.layers:
        by_name = _variables(layer)
        for name, weight in by_name.items():
            if f"{name}_min" not in by_name or f"{name}_max" not in by_name:
                continue
            min_var, max_var = by_name[f"{name}_min"], by_name[f"{name}_max"]
            values = np.abs(weight.numpy())
            peak = values.max() if min_var.shape.rank == 0 else values.reshape(-1, values.shape[-1]).max(axis=0)
            min_var.assign(-np.reshape(peak, min_var.shape))
            max_var.assign(np.reshape(peak, max_var.shape))
            count += 1
    return count


def load_qat_model(path: str | os.PathLike) -> keras.Model:
    """Load a QAT model saved as ``.keras`` (``run_qat``'s ``qat_model.keras`` and ``best.keras``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such QAT model file")
    with quantize_scope():
        return keras.models.load_model(path, compile=False)


# -- checks ---------------------------------------------------------------------------------------------------

def range_preserving() -> tuple[type, ...]:
    """Layers whose outputs are a subset of the input's values (TFLite gives them the input's scale): max
    pooling, and the architectures' layers declared without an output range (SINet's ChannelSlice)."""
    return (layers.MaxPooling2D, *(cls for cls, quantized in custom_layers().items() if not quantized))


# Activations whose int8 output range TFLite fixes (LOGISTIC: 1/256 from 0, ...): nothing to learn.
FIXED_RANGE_ACTIVATIONS = ("sigmoid", "softmax", "tanh")
# Consumers into which TFLite folds their producer's output: batch norm into the conv, ReLU as the fused
# activation, CONCATENATION giving its inputs its own scale.
ABSORBING = (layers.BatchNormalization, layers.ReLU, layers.Concatenate)


def _own_range(layer) -> bool:
    if isinstance(layer, quantize_layer.QuantizeLayer):
        return layer.quantizer is not None
    return bool(_range_variables(layer))


def unquantized_layers(qat_model: keras.Model) -> list[str]:
    """Names of the layers whose output would reach the int8 graph without a quantization range.

    A layer is covered when it fake-quantizes its own output, keeps its input's values (slice, max pool), is a
    fixed-range activation, or feeds only consumers that absorb its output (see ``ABSORBING``) and are covered
    themselves. A layer tfmot did not wrap at all (e.g. a Lambda) is never covered.
    """
    consumers = _consumers(qat_model)

    @functools.cache
    def covered(name: str) -> bool:
        layer = qat_model.get_layer(name)
        if isinstance(layer, layers.InputLayer) or _own_range(layer):
            return True
        if not isinstance(layer, tfq.QuantizeWrapper):
            return False
        inner = layer.layer
        if isinstance(inner, range_preserving()):
            return True
        if isinstance(inner, layers.Activation) and inner.activation.__name__ in FIXED_RANGE_ACTIVATIONS:
            return True
        users = consumers[name]
        return bool(users) and all(isinstance(getattr(user, "layer", user), ABSORBING) and covered(user.name)
                                   for user in users)

    return [layer.name for layer in qat_model.layers if not covered(layer.name)]


def float_ops(tflite_model: bytes | str | os.PathLike) -> list[str]:
    """Ops of a converted int8 model that compute in float: any op with a float32 input or output other than
    the QUANTIZE / DEQUANTIZE ops that convert the graph's inputs and outputs. Empty for a fully int8 graph."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = (Interpreter(model_content=bytes(tflite_model)) if isinstance(tflite_model, (bytes, bytearray))
                   else Interpreter(model_path=os.fspath(tflite_model)))
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    problems = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        tensors = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
        if any(dtypes[i] == "float32" for i in tensors):
            problems.append(f"{op['op_name']} (op {op['index']})")
    return problems


# -- the fine-tuning run --------------------------------------------------------------------------------------

def qat_recipe(recipe: Recipe, weights: str | os.PathLike | None = None, epochs: int | None = None,
               learning_rate: float | None = None) -> Recipe:
    """The float recipe turned into its QAT fine-tuning: same model, data and objective, starting from the
    trained float weights, a few epochs at a constant learning rate. These come from the recipe's [qat] table;
    ``weights`` (relative to the working directory), ``epochs`` and ``learning_rate`` override it."""
    given = {"weights": weights and str(Path(weights).resolve()), "epochs": epochs, "learning_rate": learning_rate}
    given = {key: value for key, value in given.items() if value is not None}
    if recipe.qat is None and "weights" not in given:
        raise RecipeError(f"{recipe.path}: no [qat] table; add one (weights = the trained float model, relative to "
                          "the recipe) or give the weights (--weights)")
    qat = dataclasses.replace(recipe.qat, **given) if recipe.qat else QatConfig(**given)
    weights = (recipe.path.parent / qat.weights).resolve()
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained float weights; train the float model first "
                                f"(portrait-sdk train {recipe.path})")
    if qat.epochs <= 0 or qat.learning_rate <= 0:
        raise RecipeError(f"{recipe.path}: [qat] epochs and learning_rate must be positive, got {qat.epochs} and "
                          f"{qat.learning_rate}")
    train = dataclasses.replace(recipe.train, epochs=qat.epochs, learning_rate=qat.learning_rate, lr_schedule="step",
                                lr_decay=1.0, lr_decay_epochs=0, init_weights=str(weights))
    model = dataclasses.replace(recipe.model, calibrate_temperature=True) if qat.calibrate_temperature else recipe.model
    return dataclasses.replace(recipe, model=model, train=train, qat=qat)


def inference_model(qat_model: keras.Model, recipe: Recipe) -> keras.Model:
    """The QAT model without its training heads: the spec's inference heads (a dict, as the float model's
    ``training_heads=True`` graph), same layers."""
    outputs = qat_model.output
    if not isinstance(outputs, dict):
        return qat_model
    return keras.Model(qat_model.inputs, {head: outputs[head] for head in get_spec(recipe.model.name).inference_heads},
                       name=qat_model.name)


def run_qat(recipe_path: str | os.PathLike, out_dir: str | os.PathLike, weights: str | os.PathLike | None = None,
            epochs: int | None = None, learning_rate: float | None = None, resume: bool = False,
            progress: bool = True) -> dict:
    """Fine-tune the recipe's trained float model with fake quantization, as its [qat] table says (``weights``,
    ``epochs`` and ``learning_rate`` override it: ``qat_recipe``); returns (and writes) the report.

    The float model is evaluated first on the validation split, then wrapped by ``quantize_for_training`` and
    trained by the recipe's ``Trainer`` (checkpoints, resume, best epoch by the recipe's metric).
    """
    from portrait_sdk.train import Trainer  # not at the top: loading a QAT model to export it needs no trainer

    recipe = qat_recipe(load_recipe(recipe_path), weights, epochs, learning_rate)
    out_dir = Path(out_dir)
    trainer = Trainer(recipe, out_dir, progress=progress, model_transform=quantize_for_training)
    # Ranges from the float model before the first step (a resumed run's checkpoint then restores its own).
    calibrate_ranges(trainer.base_model, trainer.model, trainer.image_batches(CALIBRATION_BATCHES))
    float_metrics = trainer.evaluate(trainer.base_model)
    best = trainer.fit(resume=resume)
    trainer.model.load_weights(out_dir / "best.keras")  # the best epoch, not the last
    atomic_write(out_dir / QAT_MODEL_FILE, inference_model(trainer.model, recipe).save, keep_suffix=True)
    if recipe.qat.output_weights:
        atomic_write(recipe.path.parent / recipe.qat.output_weights,
                     functools.partial(shutil.copyfile, out_dir / QAT_MODEL_FILE))

    metric = recipe.train.metric
    qat_metrics = {key[4:]: value for key, value in best.items() if key.startswith("val_")}
    report = {
        # Relative to the recipe, as its [qat] table names them: a committed report holds no path of this machine.
        "model": recipe.model.name, "recipe": str(recipe.path),
        "weights": Path(os.path.relpath(recipe.train.init_weights, recipe.path.parent.resolve())).as_posix(),
        "epochs": recipe.qat.epochs, "learning_rate": recipe.qat.learning_rate, "metric": metric,
        "metric_mode": recipe.train.metric_mode,
        "float": float_metrics, "qat": qat_metrics, "qat_epoch": best["epoch"],
        "change": qat_metrics[metric] - float_metrics[metric], "qat_model": QAT_MODEL_FILE,
    }
    atomic_write(out_dir / REPORT_FILE, lambda p: p.write_text(json.dumps(report, indent=2)))
    return report
