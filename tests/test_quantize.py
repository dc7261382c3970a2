"""QAT: every layer of every architecture is fake-quantized, a fine-tuning run keeps the metric and writes its
report and a loadable model, and QAT models convert to all-int8 TFLite files the GPU delegate runs."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_train import RECIPE, make_toy_dataset, toy_registered  # noqa: F401 (a fixture)
from toy_model import NAME

from portrait_sdk.models import build_model, get_spec, list_models
from portrait_sdk.recipe import RecipeError, load_recipe

SIZE = (32, 32)
TRAINING = Path(__file__).resolve().parents[1] / "training"
# a recipe's [qat] table: the trained float model relative to the recipe
QAT_TABLE = """
[qat]
weights = "float/best.keras"
epochs = 2
learning_rate = 1e-3
"""


def small_size(name: str) -> tuple[int, int]:
    """32x32, or the smallest square the architecture's output stride allows when that is larger."""
    side = math.lcm(SIZE[0], get_spec(name).output_stride)
    return side, side


@pytest.mark.parametrize("name", list_models())
def test_every_layer_is_quantized(name):
    from portrait_sdk.quantize import quantize_for_training, unquantized_layers

    model = build_model(name, input_size=small_size(name), training_heads=True)
    qat = quantize_for_training(model)
    assert unquantized_layers(qat) == []
    assert sorted(qat.output) == sorted(model.output)  # the training heads the objective reads are still there


def test_unquantized_layers_names_a_layer_left_float():
    import tensorflow_model_optimization as tfmot

    from portrait_sdk.keras_env import keras
    from portrait_sdk.quantize import OutputQuantizeConfig, quantize_for_training, unquantized_layers

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    y = keras.layers.Conv2D(4, 1)(x)
    subtract = keras.layers.Subtract(name="difference")  # as if its config forgot the output range
    x = tfmot.quantization.keras.quantize_annotate_layer(subtract, OutputQuantizeConfig(quantize_output=False))([x, y])
    qat = quantize_for_training(keras.Model(inputs, keras.layers.Conv2D(2, 1)(x)))
    assert unquantized_layers(qat) == ["quant_difference"]


def wide_range_model():
    """Conv -> BN -> depthwise -> BN -> linear 1x1: activations up to ~+-100 (tfmot starts every range at +-6) and
    depthwise channels whose weights differ 100-fold, as in MobileNetV2 weights imported from an int8 file."""
    from portrait_sdk.keras_env import keras

    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.BatchNormalization(name="expand_bn")(layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = layers.BatchNormalization(name="dw_bn")(x)
    model = keras.Model(inputs, layers.Conv2D(2, 1, name="logits")(x))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(5, 20, 8), rng.normal(0, 5, 8), rng.normal(0, 1, 8), rng.uniform(0.5, 2, 8)])
    channel_scale = np.logspace(-1, 1, 8).reshape(1, 1, 8, 1)  # 0.1 .. 10
    model.get_layer("dw").set_weights([rng.normal(0, 1, (3, 3, 8, 1)) * channel_scale])
    return model, rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")


def test_calibrated_qat_model_computes_what_the_float_model_does():
    """Without calibration the fresh QAT model clips everything beyond tfmot's initial +-6 (and the nail segmenter
    predicted nothing after a QAT epoch); calibrated, it differs from the float model by quantization noise."""
    from portrait_sdk.quantize import calibrate_ranges, quantize_for_training

    model, images = wide_range_model()
    expected = model(images, training=False).numpy()
    assert np.abs(expected).max() > 30  # the premise: far beyond +-6
    qat = quantize_for_training(model)
    error = np.abs(qat(images, training=False).numpy() - expected).max()
    assert error > 0.2 * np.abs(expected).max()  # uncalibrated: clipped
    assert calibrate_ranges(model, qat, [images[:2], images[2:]]) > 0
    error = np.abs(qat(images, training=False).numpy() - expected).max()
    assert error < 0.05 * np.abs(expected).max()


def test_depthwise_equalization_keeps_the_function_and_evens_the_channels():
    from portrait_sdk.quantize import equalize_depthwise_kernels

    model, images = wide_range_model()
    expected = model(images, training=False).numpy()
    assert equalize_depthwise_kernels(model) == 1
    np.testing.assert_allclose(model(images, training=False).numpy(), expected, rtol=1e-4, atol=1e-3)
    peaks = np.abs(model.get_layer("dw").get_weights()[0]).max(axis=(0, 1, 3))
    np.testing.assert_allclose(peaks, peaks.max(), rtol=1e-6)


@pytest.fixture()
def recipe_path(tmp_path, toy_registered):
    """test_train's toy recipe (tests/toy_model.py at 32x32 on discs), 4 epochs at a learning rate that fits it."""
    make_toy_dataset(tmp_path)
    path = tmp_path / "toy.toml"
    text = RECIPE.format(root=tmp_path)
    path.write_text(text.replace("epochs = 2", "epochs = 4").replace("learning_rate = 1e-3", "learning_rate = 1e-2"))
    return path


def test_qat_command_keeps_the_metric_and_writes_report_and_model_as_the_qat_table_says(recipe_path, tmp_path):
    from portrait_sdk.cli import main
    from portrait_sdk.quantize import QAT_MODEL_FILE, REPORT_FILE, load_qat_model, unquantized_layers
    from portrait_sdk.train import Trainer

    Trainer(load_recipe(recipe_path), tmp_path / "float", progress=False).fit()
    recipe_path.write_text(recipe_path.read_text() + QAT_TABLE + 'output_weights = "toy_qat.keras"\n')
    assert main(["qat", str(recipe_path), "--output", str(tmp_path / "qat"), "--quiet"]) == 0

    report = json.loads((tmp_path / "qat" / REPORT_FILE).read_text())
    assert (report["weights"], report["epochs"], report["learning_rate"]) == (
        "float/best.keras", 2, 1e-3)  # relative to the recipe, as the [qat] table names it
    assert (tmp_path / "toy_qat.keras").read_bytes() == (tmp_path / "qat" / QAT_MODEL_FILE).read_bytes()
    assert report["model"] == NAME and report["metric"] == "iou" and report["qat_epoch"] in (1, 2)
    assert report["float"]["iou"] > 0.5, "the float model should have learnt the toy task"
    assert report["qat"]["iou"] >= report["float"]["iou"] - 0.05, report
    assert report["qat_model"] == QAT_MODEL_FILE
    model = load_qat_model(tmp_path / "qat" / QAT_MODEL_FILE)
    assert model.output_shape == {"mask": (None, 32, 32, 1)}  # the spec's inference heads: "coarse" is gone
    assert unquantized_layers(model) == []


def test_qat_command_names_missing_weights(recipe_path, tmp_path, capsys):
    from portrait_sdk.cli import main

    assert main(["qat", str(recipe_path), "--weights", str(tmp_path / "absent.keras"), "--quiet"]) == 2
    assert "absent.keras: no trained float weights" in capsys.readouterr().err
    assert main(["qat", str(recipe_path), "--quiet"]) == 2
    assert "toy.toml: no [qat] table" in capsys.readouterr().err


def test_qat_table_errors_name_the_file_and_the_key(recipe_path):
    text = recipe_path.read_text() + QAT_TABLE
    recipe_path.write_text(text.replace("learning_rate = 1e-3\n", "learning_rate = 1\n"))
    assert load_recipe(recipe_path).qat.learning_rate == 1.0  # an integer is a float
    cases = {"epochs = 2": ("epoch = 2", r"toy\.toml: \[qat\]: unknown key 'epoch'; valid keys: weights"),
             "epochs = 2\n": ('epochs = "2"\n', r"toy\.toml: \[qat\] epochs must be int, got str '2'"),
             'weights = "float/best.keras"': ("", r"toy\.toml: \[qat\]: missing required key 'weights'")}
    for original, (bad, message) in cases.items():
        recipe_path.write_text(text.replace(original, bad))  # the toy's [train] has epochs = 4
        with pytest.raises(RecipeError, match=message):
            load_recipe(recipe_path)


def test_qat_settings_come_from_the_table_and_the_command_line_overrides_them(recipe_path, tmp_path, monkeypatch):
    from portrait_sdk.quantize import qat_recipe

    (tmp_path / "float").mkdir()
    (tmp_path / "float" / "best.keras").write_bytes(b"")  # only its existence is checked before training
    (tmp_path / "other.keras").write_bytes(b"")
    without_table = load_recipe(recipe_path)
    recipe_path.write_text(recipe_path.read_text() + QAT_TABLE)
    recipe = load_recipe(recipe_path)
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, lr_schedule="cosine"))

    train = qat_recipe(recipe).train
    assert (train.init_weights, train.epochs, train.learning_rate) == (
        str(tmp_path.resolve() / "float" / "best.keras"), 2, 1e-3)
    assert not qat_recipe(recipe).model.calibrate_temperature
    calibrated = dataclasses.replace(recipe, qat=dataclasses.replace(recipe.qat, calibrate_temperature=True))
    assert qat_recipe(calibrated).model.calibrate_temperature  # [qat] calibrate_temperature turns on [model]'s
    assert (train.lr_schedule, train.lr_decay, train.lr_decay_epochs) == ("step", 1.0, 0)  # constant, never cosine
    monkeypatch.chdir(tmp_path)
    train = qat_recipe(recipe, weights="other.keras", epochs=1, learning_rate=1e-2).train  # the command line's flags
    assert (train.init_weights, train.epochs, train.learning_rate) == (str(tmp_path.resolve() / "other.keras"), 1, 1e-2)
    assert qat_recipe(recipe, epochs=3).train.learning_rate == 1e-3  # what is not overridden stays
    with pytest.raises(RecipeError, match=r"toy\.toml: \[qat\] epochs and learning_rate must be positive"):
        qat_recipe(recipe, epochs=0)

    train = qat_recipe(without_table, weights="other.keras").train  # no [qat]: the weights and the defaults
    assert (train.epochs, train.learning_rate) == (5, 1e-5)
    with pytest.raises(RecipeError, match=r"toy\.toml: no \[qat\] table"):
        qat_recipe(without_table)


@pytest.mark.parametrize("path", sorted(TRAINING.glob("*.toml")), ids=lambda path: path.stem)
def test_recipes_qat_tables_start_from_committed_weights(path):
    qat = load_recipe(path).qat
    assert qat is None or (path.parent / qat.weights).is_file(), f"{path}: [qat] weights {qat.weights} not found"


@pytest.mark.parametrize("name", ["sinet", "hair_segmenter"])  # the most unusual layers; conversion is slow
def test_qat_model_converts_to_int8_on_gpu_ops(name):
    """Converted as the exporter converts "qat_int8" (``export.to_tflite``: the frozen-graph path; the converter's
    default SavedModel round trip spent minutes saving the QAT model's Keras layers), float in and out."""
    from ai_edge_litert.interpreter import Interpreter

    from portrait_sdk.export import to_tflite
    from portrait_sdk.gpu_ops import gpu_incompatibilities
    from portrait_sdk.quantize import float_ops, quantize_for_training

    model = build_model(name, input_size=small_size(name))
    qat = quantize_for_training(model)
    shape = (1, *model.input_shape[1:])
    tflite = to_tflite(qat, "qat_int8")

    assert gpu_incompatibilities(tflite) == []
    assert float_ops(tflite) == []
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(logits, qat(image, training=False).numpy(), atol=0.1 * np.abs(logits).max() + 1e-3)
