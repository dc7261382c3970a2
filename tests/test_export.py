"""Export at every precision: GPU-safe op list, a loadable card, probabilities that match Keras, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from export_cases import CARD_FIELDS, CASES, SIZE, export_path, exported, litert_outputs, tiny_model, write_images

from portrait_sdk import export
from portrait_sdk.export import LATENCY_KEY, PRECISIONS, export_model
from portrait_sdk.gpu_ops import gpu_incompatibilities
from portrait_sdk.metadata import read_metadata
from portrait_sdk.model_card import ModelCard, card_path

# |TFLite - Keras| of the probabilities: the max for float files; the mean for quantized ones, whose few worst
# pixels sit where the test model's steep logits amplify one int8 step (a broken export is off by ~0.2 on average)
MAX_ERROR = {"float32": 1e-4, "float16": 2e-3}
MEAN_ERROR = {"dynamic_int8": 0.05, "int8": 0.05, "qat_int8": 0.05}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return exported(tmp_path_factory)


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("case", list(CASES))
def test_export_is_gpu_safe_with_a_card(folder, case, precision):
    path = export_path(folder, case, precision)
    assert gpu_incompatibilities(path) == []
    card = ModelCard.load(card_path(path))
    architecture, classes = CASES[case]
    assert (card.name, card.architecture, card.task, card.precision) == (path.stem, architecture, "portrait",
                                                                         precision)
    assert (card.input.height, card.input.width, card.input.channels) == (SIZE, SIZE, 3)
    assert (card.input.color_order, card.input.mean, card.input.std, card.input.resize) == (
        "RGB", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), "letterbox")
    assert card.output.kind == ("sigmoid" if classes == 1 else "softmax")
    assert card.output.labels == (("person",) if classes == 1 else ("background", "person"))
    assert (card.license, card.training_data, card.metrics) == (CARD_FIELDS["license"],
                                                                CARD_FIELDS["training_data"], CARD_FIELDS["metrics"])
    assert card.latency_ms[LATENCY_KEY] > 0


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("case", list(CASES))
def test_export_outputs_the_keras_probabilities(folder, case, precision):
    path = export_path(folder, case, precision)
    outputs = litert_outputs(path, np.load(folder / f"{case}_input.npy"))
    assert len(outputs) == 1, "training-only heads must be stripped"
    prob = outputs[0]
    assert prob.shape == (1, SIZE, SIZE, CASES[case][1])
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    if prob.shape[-1] > 1:  # int8 softmax outputs are multiples of 1/256
        assert np.abs(prob.sum(axis=-1) - 1.0).max() < (1e-5 if precision.startswith("float") else 0.02)
    keras_prob = np.load(path.with_name(f"{path.stem}_keras.npy"))
    assert keras_prob.std() > 0.1, "the test model's probabilities should spread over 0..1"
    error = np.abs(prob - keras_prob)
    assert error.max() < MAX_ERROR[precision] if precision in MAX_ERROR else error.mean() < MEAN_ERROR[precision]


def test_only_the_mask_head_ships(tmp_path):
    """The nail segmenter's untrained instance and direction heads and every training head stay out: one output,
    the mask (MediaPipe's ImageSegmenter fails on the first frame of a 3-output file)."""
    from portrait_sdk.keras_env import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    heads = {name: keras.layers.Conv2D(channels, 1, name=name)(x)
             for name, channels in (("direction", 2), ("aux_low", 2), ("mask", 2), ("instance", 11))}
    model = keras.Model(inputs, heads, name="nail_segmenter")
    x = np.random.default_rng(0).uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    path = export_model(model, tmp_path, "nails", "float32", latency_runs=1)
    (mask,) = litert_outputs(path, x)
    expected = keras.layers.Softmax()(model(x)["mask"]).numpy()
    assert np.abs(mask - expected).max() < 1e-5
    card = ModelCard.load(card_path(path))
    assert (card.task, card.output.labels, card.input.resize) == ("nails", ("background", "nail"), "letterbox")
    assert [output["name"] for output in read_metadata(path)["outputs"]] == ["mask"]


def test_failed_export_leaves_existing_files_untouched(tmp_path, monkeypatch):
    path, card = tmp_path / "tiny_fp32.tflite", tmp_path / "tiny_fp32.json"
    path.write_bytes(b"old model")
    card.write_text("old card")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(export.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        export_model(tiny_model("portraitnet", 2), tmp_path, "tiny", "float32", latency_runs=1)
    assert path.read_bytes() == b"old model" and card.read_text() == "old card"
    assert sorted(os.listdir(tmp_path)) == ["tiny_fp32.json", "tiny_fp32.tflite"], "temp files left behind"


def test_gpu_incompatible_file_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "gpu_incompatibilities", lambda model: ["op TRANSPOSE is not on the list"])
    with pytest.raises(ValueError, match="GPU delegate.*TRANSPOSE"):
        export_model(tiny_model("portraitnet", 2), tmp_path, "tiny", "float32", latency_runs=1)
    assert os.listdir(tmp_path) == []


def test_empty_representative_folder_is_named(tmp_path):
    empty = tmp_path / "calibration"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"{empty}.*no images"):
        export_model(tiny_model("portraitnet", 2), tmp_path / "out", "tiny", "int8", representative_data=empty)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision, kwargs, message", [
    ("float64", {}, "unknown precision 'float64'"),
    ("int8", {}, "needs representative data"),
    ("qat_int8", {}, "wrapped by quantize_model"),
    ("float32", {"card_fields": {"licence": "x"}}, r"unknown card fields \['licence'\]"),
    ("float32", {"architecture": "unet"}, "unknown model 'unet'"),
])
def test_bad_requests_fail_before_converting(tmp_path, precision, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_model(tiny_model("portraitnet", 2), tmp_path, "tiny", precision, **kwargs)
    assert not any(tmp_path.iterdir())


def test_cli_exports_a_trainer_keras_file(tmp_path, capsys):
    from portrait_sdk.cli import main

    weights = tmp_path / "best.keras"
    tiny_model("extremec3net", 1, training_heads=True).save(weights)
    images = write_images(tmp_path / "images", count=2)
    assert main(["export", str(weights), "--precision", "float16", "int8", "--representative", str(images),
                 "--output", str(tmp_path / "export"), "--name", "tiny", "--latency-runs", "1",
                 "--license", "MIT"]) == 0
    for suffix in ("fp16", "int8"):
        card = ModelCard.load(tmp_path / "export" / f"tiny_{suffix}.json")
        assert (card.architecture, card.license) == ("extremec3net", "MIT")
    assert "tiny_int8.tflite" in capsys.readouterr().out


def test_float_export_imports_neither_the_trainer_nor_tfmot(tmp_path):
    """A float export of a trainer's ``.keras`` file, in a fresh process: tfmot (and ``portrait_sdk.quantize``,
    which imports the trainer) is only for QAT files."""
    code = textwrap.dedent(f"""
        import sys
        from export_cases import tiny_model
        from portrait_sdk.export import export_model

        weights = {str(tmp_path / "best.keras")!r}
        tiny_model("extremec3net", 1, training_heads=True).save(weights)
        for precision in ("float32", "float16"):
            export_model(weights, {str(tmp_path)!r}, "tiny", precision, latency_runs=1)
        print(sorted(m for m in sys.modules if m in ("portrait_sdk.train", "portrait_sdk.quantize")
                     or m.startswith("tensorflow_model_optimization")))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert (tmp_path / "tiny_fp32.tflite").is_file() and (tmp_path / "tiny_fp16.tflite").is_file()


def test_load_model_reads_a_qat_keras_file(tmp_path):
    """A QAT file is recognised by its tfmot layers and loaded inside ``quantize_scope`` (see the test above)."""
    from portrait_sdk.quantize import quantize_for_training

    path = tmp_path / "qat_model.keras"
    quantize_for_training(tiny_model("portraitnet", 2)).save(path)
    assert export.is_quantization_aware(export.load_model(path))


def test_latencies_measured_together_time_each_model_in_alternating_order(monkeypatch):
    """``measure_latencies``: one median per model, each model invoked once a round, the order reversed every
    other round (so drift falls on all alike); ``measure_latency`` is its one-model case."""
    calls = []

    class FakeInterpreter:
        def __init__(self, model_path=None, model_content=None, num_threads=None):
            self.name = model_path or bytes(model_content).decode()

        def allocate_tensors(self):
            pass

        def get_input_details(self):
            return [{"index": 0, "shape": (1, 2), "dtype": np.float32}]

        def set_tensor(self, index, value):
            pass

        def invoke(self):
            calls.append(self.name)

    import ai_edge_litert.interpreter

    monkeypatch.setattr(ai_edge_litert.interpreter, "Interpreter", FakeInterpreter)
    medians = export.measure_latencies(["a.tflite", b"b"], runs=3, warmup=1)
    assert len(medians) == 2 and all(ms >= 0 for ms in medians)
    assert calls == ["b", "a.tflite", "a.tflite", "b", "b", "a.tflite", "a.tflite", "b"]
    with pytest.raises(ValueError, match="runs must be >= 1"):
        export.measure_latencies(["a.tflite"], runs=0)
    calls.clear()
    assert export.measure_latency("a.tflite", runs=2, warmup=0) >= 0 and calls == ["a.tflite", "a.tflite"]
