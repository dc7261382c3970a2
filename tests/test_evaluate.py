"""``portrait-sdk evaluate`` scores .tflite files through the runtime, at each image's size."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pytest
from tiny_models import model_folder

import portrait_sdk.evaluate as evaluate_module
from portrait_sdk.cli import main
from portrait_sdk.evaluate import evaluate, parse_filters
from portrait_sdk.model_card import ModelCard, card_path


def _folder(root, count=3, inverted=False):
    """Red squares on blue: the tiny model (foreground = sigmoid(6 (R - B))) segments them almost exactly;
    ``inverted`` labels the blue background as the person instead."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.zeros((30, 40, 3), np.uint8)
        image[...] = (30, 40, 200)
        top, left = int(rng.integers(2, 8)), int(rng.integers(2, 12))
        image[top:top + 18, left:left + 20] = (220, 60, 40)
        mask = np.zeros((30, 40), np.uint8)
        mask[top:top + 18, left:left + 20] = 255
        cv2.imwrite(str(root / "images" / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"{i}.png"), 255 - mask if inverted else mask)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return model_folder(tmp_path_factory) / "tiny_portrait.tflite"


def test_evaluate_reports_metrics_size_and_latency_per_model(tiny_model, tmp_path, capsys):
    data = _folder(tmp_path / "data")
    report = evaluate([tiny_model], data)
    (row,) = report["results"]
    assert report["images"] == 3 and row["images"] == 3
    assert row["iou"] > 0.9 and row["size_mb"] >= 0 and row["inference_ms_median"] > 0
    (wrong,) = evaluate([tiny_model], _folder(tmp_path / "inverted", inverted=True))["results"]
    assert wrong["iou"] < 0.1

    out = tmp_path / "report.json"
    assert main(["evaluate", str(tiny_model), "--data", str(data), "--output", str(out)]) == 0
    assert tiny_model.name in capsys.readouterr().out
    assert json.loads(out.read_text())["results"][0]["iou"] == row["iou"]


def test_mixed_tasks_get_one_table_per_metric_family(tiny_model, tmp_path, capsys):
    """The README's ``evaluate export/*.tflite``: portrait and matting files together (a KeyError 'iou' once)."""
    matting = tmp_path / "tiny_matting.tflite"
    shutil.copy(tiny_model, matting)
    replace(ModelCard.load(card_path(tiny_model)), name="tiny_matting", task="matting").save(card_path(matting))
    data, out = _folder(tmp_path / "data"), tmp_path / "report.json"
    assert main(["evaluate", str(tiny_model), str(matting), str(tiny_model), "--data", str(data),
                 "--output", str(out)]) == 0
    tables = capsys.readouterr().out.split("\n\n")
    assert len(tables) == 2
    assert "iou" in tables[0].splitlines()[1] and [line.split()[0] for line in tables[0].splitlines()[2:]] == [
        tiny_model.name, tiny_model.name]
    assert "sad" in tables[1].splitlines()[0] and tables[1].splitlines()[1].startswith(matting.name)
    assert [row["model"] for row in json.loads(out.read_text())["results"]] == [
        tiny_model.name, matting.name, tiny_model.name]


def test_report_is_written_before_the_table_is_printed(tiny_model, tmp_path, monkeypatch):
    def broken_table(report):
        raise RuntimeError("printing failed")

    monkeypatch.setattr(evaluate_module, "format_table", broken_table)
    out = tmp_path / "report.json"
    with pytest.raises(RuntimeError, match="printing failed"):
        main(["evaluate", str(tiny_model), "--data", str(_folder(tmp_path / "data")), "--output", str(out)])
    assert json.loads(out.read_text())["results"][0]["model"] == tiny_model.name


def test_filters_are_key_value():
    assert parse_filters(["label_source=teacher"]) == {"label_source": "teacher"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_filters(["teacher"])


def _prior_model(folder):
    """A 4-channel model whose foreground logit margin is 6 (R - B) - 4 + 8 prior: a pinkish square (R - B = 0.5)
    is background on a first look (zero prior) and foreground once its own mask is fed back."""
    from portrait_sdk.export import to_tflite
    from portrait_sdk.keras_env import keras
    from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path

    inputs = keras.Input((16, 16, 4))
    conv = keras.layers.Conv2D(2, 1)
    model = keras.Model(inputs, keras.layers.Softmax()(conv(inputs)))
    kernel = np.zeros((1, 1, 4, 2), np.float32)
    kernel[0, 0, :, 1] = (6.0, 0.0, -6.0, 8.0)
    conv.set_weights([kernel, np.array([0.0, -4.0], np.float32)])
    path = folder / "prior.tflite"
    path.write_bytes(to_tflite(model))
    ModelCard(name="prior", architecture="tiny", task="hair", precision="float32",
              input=InputSpec(16, 16, channels=4, resize="stretch"), output=OutputSpec(labels=("background", "hair"))
              ).save(card_path(path))
    return path


def test_passes_feed_a_video_models_mask_back_and_score_the_last(tmp_path):
    data = tmp_path / "data"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    image = np.full((16, 16, 3), (0, 0, 200), np.uint8)  # RGB: blue background
    image[4:12, 4:12] = (200, 0, 72)  # R - B = 0.5
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 255
    cv2.imwrite(str(data / "images" / "0.png"), image[..., ::-1])
    cv2.imwrite(str(data / "masks" / "0.png"), mask)
    model = _prior_model(tmp_path)

    first, second = (evaluate([model], data, passes=n)["results"][0] for n in (1, 2))
    assert (first["passes"], second["passes"]) == (1, 2)
    assert first["iou"] == 0.0 and second["iou"] == pytest.approx(1.0)
    assert main(["evaluate", str(model), "--data", str(data), "--passes", "0"]) == 2
