"""QAT: every layer of every architecture is fake-quantized, a fine-tuning run keeps the metric and writes its
report and a loadable model, and QAT models convert to all-int8 TFLite files the GPU delegate runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_train import RECIPE, make_toy_dataset, toy_registered  # noqa: F401 (a fixture)
from toy_model import NAME

from portrait_sdk.models import build_model, get_spec, list_models

SIZE = (32, 32)


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


@pytest.fixture()
def recipe_path(tmp_path, toy_registered):
    """test_train's toy recipe (tests/toy_model.py at 32x32 on discs), 4 epochs at a learning rate that fits it."""
    make_toy_dataset(tmp_path)
    path = tmp_path / "toy.toml"
    text = RECIPE.format(root=tmp_path)
    path.write_text(text.replace("epochs = 2", "epochs = 4").replace("learning_rate = 1e-3", "learning_rate = 1e-2"))
    return path


def test_run_qat_keeps_the_metric_and_writes_report_and_model(recipe_path, tmp_path):
    from portrait_sdk.quantize import QAT_MODEL_FILE, REPORT_FILE, load_qat_model, run_qat, unquantized_layers
    from portrait_sdk.recipe import load_recipe
    from portrait_sdk.train import Trainer

    Trainer(load_recipe(recipe_path), tmp_path / "float", progress=False).fit()
    report = run_qat(recipe_path, tmp_path / "float" / "best.keras", tmp_path / "qat", epochs=2,
                     learning_rate=1e-3, progress=False)

    assert report == json.loads((tmp_path / "qat" / REPORT_FILE).read_text())
    assert report["model"] == NAME and report["metric"] == "iou" and report["qat_epoch"] in (1, 2)
    assert report["float"]["iou"] > 0.5, "the float model should have learnt the toy task"
    assert report["qat"]["iou"] >= report["float"]["iou"] - 0.05, report
    assert report["qat_model"] == QAT_MODEL_FILE
    model = load_qat_model(tmp_path / "qat" / QAT_MODEL_FILE)
    assert model.output_shape == (None, 32, 32, 1)  # the inference graph: the training head "coarse" is gone
    assert unquantized_layers(model) == []


def test_qat_command_names_missing_weights(recipe_path, tmp_path, capsys):
    from portrait_sdk.cli import main

    assert main(["qat", str(recipe_path), "--weights", str(tmp_path / "absent.keras"), "--quiet"]) == 2
    assert "absent.keras: no trained float weights" in capsys.readouterr().err


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
