"""Tiny TFLite models with model cards and tiny video clips for the preview and benchmark tests.

The model is one 1x1 convolution and a softmax: foreground = sigmoid(6 * (R - B)), so red things are "people" and
blue things background, which gives masks with real edges at almost no cost.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.reliability.fixtures import MODEL_SIZE as SIZE  # noqa: F401 (the tests' model size)
from portrait_sdk.reliability.fixtures import tiny_model


def write_model(folder: Path, name: str, task: str = "portrait") -> Path:
    """``folder/<name>.tflite`` + ``<name>.json`` (a ``task`` model, ``SIZE`` x ``SIZE``); TensorFlow is imported
    only here (the reliability runs' tiny model)."""
    return tiny_model(folder, name, task)


def clip_frame(index: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """An RGB frame: a red square (the "person") moving right over a blue background."""
    frame = np.zeros((*size, 3), np.uint8)
    frame[...] = (30, 40, 200)
    x = 8 + 2 * index
    frame[12:36, x:x + 20] = (220, 60, 40)
    return frame


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (48, 64)) -> Path:
    """An mp4 of ``clip_frame`` 0..frames-1 at 10 FPS."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (size[1], size[0]))
    for i in range(frames):
        writer.write(cv2.cvtColor(clip_frame(i, size), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def model_folder(tmp_path_factory) -> Path:
    """One folder per test session with ``tiny_portrait`` and ``tiny_hair`` (built by the first test file asking)."""
    folder = tmp_path_factory.getbasetemp() / "tiny_models"
    if not folder.is_dir():
        building = tmp_path_factory.mktemp("tiny_models_building")
        write_model(building, "tiny_portrait", "portrait")
        write_model(building, "tiny_hair", "hair")
        building.rename(folder)
    return folder
