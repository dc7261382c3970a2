"""``portrait-sdk evaluate`` scores .tflite files through the runtime, at each image's size."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from tiny_models import model_folder

from portrait_sdk.cli import main
from portrait_sdk.evaluate import evaluate, parse_filters


def _folder(root, count=3):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        mask = np.zeros((30, 40), np.uint8)
        mask[5:25, 10:30] = 255
        cv2.imwrite(str(root / "images" / f"{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{i}.png"), mask)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return model_folder(tmp_path_factory) / "tiny_portrait.tflite"


def test_evaluate_reports_metrics_size_and_latency_per_model(tiny_model, tmp_path, capsys):
    data = _folder(tmp_path / "data")
    report = evaluate([tiny_model], data)
    (row,) = report["results"]
    assert report["images"] == 3 and row["images"] == 3
    assert 0.0 <= row["iou"] <= 1.0 and row["size_mb"] >= 0 and row["inference_ms_median"] > 0

    out = tmp_path / "report.json"
    assert main(["evaluate", str(tiny_model), "--data", str(data), "--output", str(out)]) == 0
    assert tiny_model.name in capsys.readouterr().out
    assert json.loads(out.read_text())["results"][0]["iou"] == row["iou"]


def test_filters_are_key_value():
    assert parse_filters(["label_source=teacher"]) == {"label_source": "teacher"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_filters(["teacher"])
