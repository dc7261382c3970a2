"""Fuzzed dataset files and model files (portrait_sdk.reliability.fuzz, a short budget here; the full run is
``python -m portrait_sdk.reliability``): every case is a clear error naming the file, a counted skip, or a correct
read; plus the findings of the fuzzing, pinned."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from tiny_models import model_folder

from portrait_sdk.data import DatasetError, Sample, SegmentationDataset, read_image, validate
from portrait_sdk.reliability.fuzz import (MODEL_KINDS, MUST_READ, READER_KINDS, fuzz_models, fuzz_readers,
                                           png_with_size)
from portrait_sdk.runtime import Segmenter


def test_fuzzed_dataset_files_end_in_a_named_error_or_a_correct_read(tmp_path):
    result = fuzz_readers(2 * len(READER_KINDS), seed=7, folder=tmp_path)
    assert not result.failures, result.failures
    table = result.by_kind()
    assert set(table) == set(READER_KINDS)
    assert all(set(table[kind]) == {"read"} for kind in MUST_READ)


def test_fuzzed_model_files_end_in_a_named_error_or_the_same_mask(tmp_path_factory, tmp_path):
    model = model_folder(tmp_path_factory) / "tiny_portrait.tflite"
    result = fuzz_models(2 * len(MODEL_KINDS), seed=7, folder=tmp_path, model=model)
    assert not result.failures, result.failures
    assert set(result.by_kind()) == set(MODEL_KINDS)


def _sample(tmp_path, label: np.ndarray):
    cv2.imwrite(str(tmp_path / "image.png"), np.zeros((8, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "label.png"), label)
    return SegmentationDataset([Sample(tmp_path / "image.png", tmp_path / "label.png", "mask", "gray")], tmp_path,
                               "one")


@pytest.mark.parametrize("color", [0, 255])
def test_a_mask_kept_in_the_alpha_channel_is_refused_not_read_as_its_colour(tmp_path, color):
    mask = np.zeros((8, 10), np.uint8)
    mask[2:6, 3:8] = 255
    dataset = _sample(tmp_path, np.dstack([np.full((8, 10, 3), color, np.uint8), mask]))
    with pytest.raises(DatasetError, match=r"label\.png: the label has transparent pixels"):
        validate(dataset)


def test_an_opaque_rgba_mask_is_read_from_its_colour(tmp_path):
    mask = np.zeros((8, 10), np.uint8)
    mask[2:6, 3:8] = 255
    dataset = _sample(tmp_path, np.dstack([mask, mask, mask, np.full((8, 10), 255, np.uint8)]))
    np.testing.assert_array_equal(dataset.load(0)[1], mask / 255)


def test_an_image_declaring_more_pixels_than_opencv_allows_is_a_dataset_error(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_with_size(60_000, 60_000))
    with pytest.raises(DatasetError, match=r"huge\.png: OpenCV refuses to decode it"):
        read_image(path)


def test_a_transposed_label_hints_at_the_exif_orientation(tmp_path):
    dataset = _sample(tmp_path, np.zeros((10, 8), np.uint8))
    with pytest.raises(DatasetError, match="transposed: labels follow the image as displayed"):
        dataset.load(0)


@pytest.mark.parametrize("field, value", [("input", 3.5), ("input.mean", "abc"), ("output.labels", 7),
                                          ("input.height", "32"), ("output", None)])
def test_a_card_field_of_the_wrong_type_is_named(tmp_path_factory, tmp_path, field, value):
    source = model_folder(tmp_path_factory) / "tiny_portrait.tflite"
    (tmp_path / "m.tflite").write_bytes(source.read_bytes())
    card = json.loads(source.with_suffix(".json").read_text())
    *parents, key = field.split(".")
    target = card
    for parent in parents:
        target = target[parent]
    target[key] = value
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=str(tmp_path / "m.json")):
        Segmenter.from_file(tmp_path / "m.tflite")
