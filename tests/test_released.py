"""The released files in export/: every model of the release manifest is there at fp16, and at int8 where int8 is
within the limit, with its scored card (the same card inside the metadata), runs whole on LiteRT's GPU path matching the CPU,
and MediaPipe's ImageSegmenter gives the mask our runtime gives. Needs no ../shared (the files are committed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_cases import litert_outputs
from test_gpu_check import needs_vulkan
from test_metadata import mediapipe_confidence_masks

from portrait_sdk.gpu_check import check_gpu
from portrait_sdk.metadata import read_metadata
from portrait_sdk.model_card import ModelCard, card_path
from portrait_sdk.release import REPORT_JSON, load_manifest

EXPORT = Path(__file__).resolve().parents[1] / "export"
MANIFEST = load_manifest(EXPORT / "release.toml")
REPORT = {m["name"]: m for m in json.loads((EXPORT / REPORT_JSON).read_text())["models"]}
# fp16 always; int8 where the release kept it (within the limit); a manifest model missing from the report fails
# test_report_covers_every_model_and_only_int8_within_the_limit_ships
RELEASED = [EXPORT / f"{entry.name}_{suffix}.tflite" for entry in MANIFEST for suffix in ("fp16", "int8")
            if suffix == "fp16" or entry.name not in REPORT or REPORT[entry.name]["int8_released"]]


def _ids(paths):
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", RELEASED, ids=_ids(RELEASED))
def test_released_file_has_its_scored_card_inside_and_beside_it(path):
    assert path.is_file(), f"{path.name} is missing: run `uv run portrait-sdk release`"
    card = ModelCard.load(card_path(path))
    assert card.name == path.stem and card.license and card.training_data and card.latency_ms
    assert card.metrics and all("data" in scores for scores in card.metrics.values()), card.metrics
    assert ModelCard.from_dict(read_metadata(path)["card"]) == card


def test_report_covers_every_model_and_only_int8_within_the_limit_ships():
    assert sorted(REPORT) == sorted(entry.name for entry in MANIFEST)
    for name, model in REPORT.items():
        shipped = (EXPORT / f"{name}_int8.tflite").is_file()
        assert shipped == model["int8_released"], f"{name}: int8 loses {model['int8_drop']}, shipped: {shipped}"
        assert shipped <= model["int8_within_limit"]  # never an int8 over the accuracy limit
        assert ("int8" in model["files"]) == shipped


@needs_vulkan
@pytest.mark.parametrize("path", RELEASED, ids=_ids(RELEASED))
def test_released_file_runs_whole_on_the_gpu_and_matches_the_cpu(path):
    """With the tolerance rule of `portrait-sdk gpu-check` (gpu_check.TOLERANCE): what the command says of it."""
    report = check_gpu(path)
    assert report.fully_accelerated and not report.unsupported, report.summary()
    assert report.precision == {"fp16": "float", "int8": "int8"}[path.stem.rsplit("_", 1)[1]], report.summary()
    assert report.passed, report.summary()


def _mediapipe_loadable(path: Path) -> bool:
    """MediaPipe's ImageSegmenter takes one RGB image and reads every output as a mask: not a model whose input
    carries the previous mask (4 channels) nor one with extra heads (the nail segmenter's instance / direction)."""
    card = ModelCard.load(card_path(path))
    return card.input.channels == 3 and len(read_metadata(path)["outputs"]) == 1


# a missing file stays in, to fail below
MEDIAPIPE = [p for p in RELEASED if not p.is_file() or _mediapipe_loadable(p)]


@pytest.mark.parametrize("path", MEDIAPIPE, ids=_ids(MEDIAPIPE))
def test_mediapipe_image_segmenter_gives_our_mask(path):
    assert path.is_file(), f"{path.name} is missing: run `uv run portrait-sdk release`"
    card = ModelCard.load(card_path(path))
    rng = np.random.default_rng(0)  # smooth colour blobs: an image with structure at the model's resolution
    small = rng.integers(0, 256, (card.input.height // 16, card.input.width // 16, 3)).astype(np.float32)
    image = np.kron(small, np.ones((16, 16, 1))).astype(np.uint8)
    x = (image.astype(np.float32) - np.float32(card.input.mean)) / np.float32(card.input.std)
    ours = litert_outputs(path, x[None])[0][0]
    masks = mediapipe_confidence_masks(path, image)
    channel = card.output.foreground_channel
    assert np.abs(masks[channel] - ours[..., channel]).mean() < 1 / 255
