"""The trainer: recipes checked up front, exact resume after a kill, MirroredStrategy == one device."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from toy_model import NAME, toy_spec

from portrait_sdk.recipe import RecipeError, load_recipe

TESTS = Path(__file__).resolve().parent
# A child process (the command line, MirroredStrategy) registers the toy architecture before anything else.
WITH_TOY = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from toy_model import register_toy; register_toy()\n"

RECIPE = """
[model]
name = "toy"
input_size = [32, 32]

[data]
root = "{root}"
train = "toy/train"
val = "toy/val"

[loss]
objective = "segmentation"
options = {{ criterion = "lovasz", boundary_kernel = 5 }}

[train]
epochs = 2
batch_size = 4
learning_rate = 1e-3
weight_decay = 1e-4
steps_per_epoch = 3
checkpoint_every = 2
seed = 1
"""


def make_toy_dataset(root: Path, count: int = 8) -> None:
    """Discs on noise: folders in the generic images/ + masks/ format (the reliability runs' toy data)."""
    from portrait_sdk.reliability.fixtures import toy_dataset

    toy_dataset(root, count)


@pytest.fixture()
def toy_registered(monkeypatch):
    from portrait_sdk.models import registry

    monkeypatch.setitem(registry._REGISTRY, NAME, toy_spec())


@pytest.fixture()
def recipe_path(tmp_path, toy_registered) -> Path:
    """The toy model (tests/toy_model.py) at 32x32 on discs, 2 epochs of 3 steps."""
    make_toy_dataset(tmp_path)
    path = tmp_path / "toy.toml"
    path.write_text(RECIPE.format(root=tmp_path))
    return path


def test_recipe_errors_name_the_file_and_the_key(tmp_path, recipe_path):
    text = recipe_path.read_text()
    cases = {
        "epochs = 2": ("epoch = 2", r"\[train\]: unknown key 'epoch'; valid keys: epochs"),
        "batch_size = 4": ('batch_size = "4"', r"\[train\] batch_size must be int, got str"),
        "[loss]": ("[losses]", r"unknown table \[losses\]"),
        'val = "toy/val"': ('val = "toy/val"\noversample = { source = "x" }', r"oversample needs an integer times"),
    }
    for original, (bad, message) in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text.replace(original, bad))
        with pytest.raises(RecipeError, match=message) as error:
            load_recipe(path)
        assert str(path) in str(error.value)


def test_dataset_problems_stop_training_before_it_starts(recipe_path):
    from portrait_sdk.data import DatasetError
    from portrait_sdk.train import Trainer

    (recipe_path.parent / "toy" / "train" / "masks" / "003.png").unlink()
    with pytest.raises(DatasetError, match="003"):
        Trainer(load_recipe(recipe_path), recipe_path.parent / "run", progress=False)


def test_oversample_repeats_the_matching_training_samples(recipe_path):
    from portrait_sdk.train import Trainer

    stems = [f"{i:03d}" for i in range(8)]
    (recipe_path.parent / "toy" / "index.csv").write_text(
        "stem,split,source\n" + "".join(f"{s},{split},{'street' if s == '005' else 'studio'}\n"
                                        for split in ("train", "val") for s in stems))
    recipe_path.write_text(recipe_path.read_text().replace(
        'val = "toy/val"', 'val = "toy/val"\noversample = { source = "street", times = 4 }'))
    trainer = Trainer(load_recipe(recipe_path), recipe_path.parent / "run", progress=False)
    assert sorted(s.image.stem for s in trainer.train_data) == sorted(stems + ["005"] * 3)
    assert len(trainer.val_data) == 8


class Killed(Exception):
    pass


def test_killed_run_resumes_exactly(recipe_path, monkeypatch):
    from portrait_sdk.keras_env import tf
    from portrait_sdk.train import Trainer

    tf.config.experimental.enable_op_determinism()
    recipe = load_recipe(recipe_path)
    reference = Trainer(recipe, recipe_path.parent / "reference", progress=False)
    reference.fit()
    assert (recipe_path.parent / "reference" / "best.keras").is_file()
    assert (recipe_path.parent / "reference" / "curves.png").stat().st_size > 0

    make_step = Trainer._make_train_step

    def dying_step(self):
        step, calls = make_step(self), []

        def run(iterator):
            if len(calls) == 5:  # killed during step 6, after the checkpoint of step 4 (and the epoch end at 3)
                raise Killed
            calls.append(1)
            return step(iterator)
        return run

    monkeypatch.setattr(Trainer, "_make_train_step", dying_step)
    run_dir = recipe_path.parent / "killed"
    with pytest.raises(Killed):
        Trainer(recipe, run_dir, progress=False).fit()
    monkeypatch.setattr(Trainer, "_make_train_step", make_step)

    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(recipe, run_dir, progress=False).fit()
    resumed = Trainer(recipe, run_dir, progress=False)
    resumed.fit(resume=True)

    assert int(resumed.step.numpy()) == int(reference.step.numpy()) == 6
    assert int(resumed.optimizer.iterations.numpy()) == 6
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    for a, b in zip(reference.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
    assert resumed.history[-1]["val_iou"] == pytest.approx(reference.history[-1]["val_iou"], abs=1e-6)


def test_sigkill_mid_training_then_resume_from_the_command_line(recipe_path):
    run_dir = recipe_path.parent / "cli_run"
    text = recipe_path.read_text().replace("epochs = 2", "epochs = 40").replace("checkpoint_every = 2",
                                                                              "checkpoint_every = 1")
    recipe_path.write_text(text)
    command = [sys.executable, "-c", WITH_TOY + "from portrait_sdk.cli import main; sys.exit(main())", "train",
               str(recipe_path), "--output", str(run_dir), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((run_dir / "checkpoints").glob("ckpt-*.index")):
        time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run_dir / "checkpoints").glob("ckpt-*.index"))
    assert saved, "no checkpoint was written before the kill"

    resume = command[:-1] + ["--resume", "--quiet"]
    text = recipe_path.read_text().replace("epochs = 40", "epochs = 2")
    recipe_path.write_text(text)  # finish soon: the resumed run stops at epoch 2 (step 6)
    if saved[-1] >= 6:
        pytest.skip("the first run was already past the end of the shortened run")
    result = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "best epoch" in result.stdout


MIRRORED = WITH_TOY + textwrap.dedent("""
    import json, sys
    from portrait_sdk.keras_env import tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.experimental.enable_op_determinism()
    from portrait_sdk.recipe import load_recipe
    from portrait_sdk.train import Trainer

    def losses(strategy, folder):
        trainer = Trainer(load_recipe(sys.argv[1]), folder, strategy=strategy, progress=False)
        step = trainer._make_train_step()
        iterator = iter(trainer.strategy.experimental_distribute_dataset(trainer._dataset(True)))
        return [float(step(iterator)["loss"]) for _ in range(3)]

    single = losses(tf.distribute.get_strategy(), sys.argv[2] + "/single")
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({"single": single, "mirrored": losses(mirrored, sys.argv[2] + "/mirrored"),
                      "replicas": mirrored.num_replicas_in_sync}))
""")


def test_mirrored_strategy_on_two_cpus_matches_one_device(recipe_path):
    import json

    result = subprocess.run([sys.executable, "-c", MIRRORED, str(recipe_path), str(recipe_path.parent)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["replicas"] == 2
    np.testing.assert_allclose(values["mirrored"], values["single"], rtol=1e-4)


def test_learning_rate_schedules_step_and_cosine():
    from portrait_sdk.train import LearningRate

    step = LearningRate(base=1e-3, decay=0.5, period=10, cosine=0, start=0)
    assert [round(float(step(s)), 9) for s in (0, 9, 10, 25)] == [1e-3, 1e-3, 5e-4, 2.5e-4]
    cosine = LearningRate(base=1e-3, decay=1.0, period=0, cosine=100, start=20)
    assert float(cosine(10)) == pytest.approx(1e-3)  # before its start
    assert float(cosine(70)) == pytest.approx(5e-4)  # half way
    assert float(cosine(120)) == pytest.approx(0.0, abs=1e-12) and float(cosine(500)) == pytest.approx(0.0, abs=1e-12)
    constant = LearningRate(base=2e-4, decay=0.5, period=0, cosine=0, start=0)
    assert float(constant(1000)) == pytest.approx(2e-4)


def test_resume_keeps_the_runs_schedule_unless_rescheduled(recipe_path):
    from portrait_sdk.train import Trainer

    text = recipe_path.read_text().replace("weight_decay = 1e-4", "lr_decay = 0.5\nlr_decay_epochs = 1")
    recipe_path.write_text(text)
    run_dir = recipe_path.parent / "run"
    first = Trainer(load_recipe(recipe_path), run_dir, progress=False)
    first.fit()
    assert float(first.schedule(6)) == pytest.approx(2.5e-4)  # halved at steps 3 and 6
    # The user extends the run and slows the decay: the resumed run keeps halving every epoch, and says so.
    recipe_path.write_text(text.replace("epochs = 2", "epochs = 3").replace("lr_decay_epochs = 1",
                                                                            "lr_decay_epochs = 10"))
    kept = Trainer(load_recipe(recipe_path), run_dir, progress=False)
    with pytest.warns(UserWarning, match=r"lr_decay_epochs 1 -> 10.*keeping the run's schedule.*--reschedule"):
        kept.fit(resume=True)
    assert float(kept.schedule(8)) == pytest.approx(2.5e-4) and float(kept.schedule(9)) == pytest.approx(1.25e-4)
    # Told otherwise: the recipe's schedule continues from the rate reached, no jump back up.
    recipe_path.write_text(text.replace("epochs = 2", "epochs = 4").replace("lr_decay_epochs = 1",
                                                                            "lr_decay_epochs = 10"))
    moved = Trainer(load_recipe(recipe_path), run_dir, progress=False)
    moved.fit(resume=True, reschedule=True)
    assert float(moved.schedule(9)) == pytest.approx(1.25e-4) and float(moved.schedule(12)) == pytest.approx(1.25e-4)
    # ... and that choice is the run's from now on: resuming again with the same recipe is silent.
    recipe_path.write_text(text.replace("epochs = 2", "epochs = 5").replace("lr_decay_epochs = 1",
                                                                            "lr_decay_epochs = 10"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(load_recipe(recipe_path), run_dir, progress=False).fit(resume=True)


def test_coupled_l2_is_half_l2_times_the_squared_kernels(recipe_path):
    from portrait_sdk.train import Trainer

    recipe_path.write_text(recipe_path.read_text().replace("weight_decay = 1e-4", "l2 = 0.1"))
    trainer = Trainer(load_recipe(recipe_path), recipe_path.parent / "run", progress=False)
    kernels = trainer._decayed_kernels()
    assert kernels and all("kernel" in v.name and "depthwise" not in v.name for v in kernels)
    expected = 0.05 * sum(float(np.sum(np.square(v.numpy()))) for v in kernels)
    terms = trainer._make_train_step()(iter(trainer._dataset(training=True)))
    assert float(terms["l2"]) == pytest.approx(expected, rel=1e-4)


def test_precise_batch_norm_sets_moving_statistics_to_the_batches_mean():
    from portrait_sdk.keras_env import keras
    from portrait_sdk.train import precise_batch_norm

    inputs = keras.Input((4, 4, 2))
    hidden = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    bn = keras.layers.BatchNormalization(momentum=0.99, name="bn")
    model = keras.Model(inputs, bn(hidden))
    model.get_layer("conv").set_weights([np.eye(2, dtype=np.float32)[None, None], np.zeros(2, np.float32)])
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 2.0, (8, 4, 4, 2)).astype(np.float32) for loc in (1.0, 3.0, 5.0)]
    assert precise_batch_norm(model, iter(batches)) == 3
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean((0, 1, 2)) for b in batches], 0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([b.var((0, 1, 2)) for b in batches], 0),
                               rtol=0.02)  # Keras' unbiased batch variance: 128 / 127
    assert bn.momentum == 0.99  # restored


def test_the_contract_saved_beside_the_weights_reaches_the_exported_card(recipe_path, tmp_path):
    import json

    from portrait_sdk.export import export_model
    from portrait_sdk.model_card import ModelCard, card_path
    from portrait_sdk.train import Trainer

    # The recipe validates stretched although the toy architecture letterboxes: the card must say stretch.
    recipe_path.write_text(recipe_path.read_text().replace('val = "toy/val"', 'val = "toy/val"\naugment = { fit = "stretch" }')
                           .replace("epochs = 2", "epochs = 1"))
    run_dir = recipe_path.parent / "run"
    Trainer(load_recipe(recipe_path), run_dir, progress=False).fit()
    contract = json.loads((run_dir / "best.contract.json").read_text())
    assert contract["architecture"] == NAME and contract["input_size"] == [32, 32]
    assert contract["resize"] == "stretch" and contract["inference_heads"] == ["mask"]
    exported = export_model(run_dir / "best.keras", tmp_path / "out", "toy", "float32", latency_runs=1)
    card = ModelCard.load(card_path(exported))
    assert card.architecture == NAME and card.input.resize == "stretch"
    assert card.input.std == tuple(contract["input_std"])


def test_validation_reports_each_group_and_the_last_epochs(recipe_path):
    import json

    from portrait_sdk.train import Trainer

    stems = [f"{i:03d}" for i in range(8)]
    (recipe_path.parent / "toy" / "index.csv").write_text(
        "stem,split,source\n" + "".join(f"{s},{split},{'street' if int(s) < 3 else 'studio'}\n"
                                        for split in ("train", "val") for s in stems))
    recipe_path.write_text(recipe_path.read_text().replace('val = "toy/val"', 'val = "toy/val"\nval_groups = "source"'))
    trainer = Trainer(load_recipe(recipe_path), recipe_path.parent / "run", progress=False)
    trainer.fit()
    record = trainer.history[-1]
    assert {"val_iou_street", "val_iou_studio", "val_boundary_f_street"} <= set(record)
    # the overall mean IoU is the image-weighted mean of the groups' (3 street, 5 studio images)
    assert record["val_iou"] == pytest.approx((3 * record["val_iou_street"] + 5 * record["val_iou_studio"]) / 8)
    report = json.loads((recipe_path.parent / "run" / "metrics.json").read_text())
    ious = [r["val_iou"] for r in report["history"]]
    assert report["last_epochs"]["epochs"] == 2 and report["last_epochs"]["mean"] == pytest.approx(np.mean(ious))
