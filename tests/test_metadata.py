"""TFLite Model Metadata: MediaPipe's ImageSegmenter loads every export, read_metadata gives the card's facts back."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from export_cases import CASES, SIZE, export_path, exported, litert_outputs, tiny_model
from test_environment import BLOCK_TENSORFLOW

from portrait_sdk.export import PRECISIONS
from portrait_sdk.metadata import CARD_FILE, LABELS_FILE, attach_metadata, read_metadata
from portrait_sdk.model_card import ModelCard, card_path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return exported(tmp_path_factory)


def mediapipe_confidence_masks(path, image: np.ndarray) -> list[np.ndarray]:
    """MediaPipe Tasks' ImageSegmenter (IMAGE mode, confidence masks) on an RGB uint8 image."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                           running_mode=vision.RunningMode.IMAGE,
                                           output_confidence_masks=True, output_category_mask=False)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
        return [np.array(mask.numpy_view()).reshape(image.shape[:2]) for mask in result.confidence_masks]


def test_reader_understands_mediapipes_reference(shared_dir):
    meta = read_metadata(shared_dir / "baselines" / "selfie_segmentation_with_metadata.tflite")
    assert (meta["labels"], meta["input"]["mean"], meta["input"]["std"]) == (("selfie",), (0.0,), (255.0,))
    assert (meta["input"]["color_space"], meta["activation"], meta["card"]) == ("RGB", "NONE", None)


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("case", list(CASES))
def test_mediapipe_image_segmenter_matches_our_inference(folder, case, precision):
    path = export_path(folder, case, precision)
    card = ModelCard.load(card_path(path))
    image = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    ours = litert_outputs(path, image[None].astype(np.float32) / 255.0)[0][0]
    masks = mediapipe_confidence_masks(path, image)
    assert len(masks) == ours.shape[-1]
    foreground = card.output.foreground_channel
    assert np.abs(masks[foreground] - ours[..., foreground]).mean() < 1 / 255


@pytest.mark.parametrize("case", list(CASES))
def test_read_metadata_round_trips_the_card(folder, case):
    path = export_path(folder, case, "float16")
    card = ModelCard.load(card_path(path))
    meta = read_metadata(path)
    assert (meta["name"], meta["version"], meta["author"], meta["license"]) == (
        card.name, card.version, card.author, card.license)
    assert meta["labels"] == card.output.labels
    assert (meta["input"]["mean"], meta["input"]["std"], meta["input"]["color_space"]) == (
        card.input.mean, card.input.std, "RGB")
    assert (meta["input"]["min"], meta["input"]["max"]) == ((0.0,) * 3, (1.0,) * 3)
    assert meta["activation"] == "NONE"  # the graph already ends in softmax / sigmoid
    assert ModelCard.from_dict(meta["card"]) == card
    assert meta["min_parser_version"] == "1.5.0"
    with zipfile.ZipFile(path) as archive:  # the .tflite file is also a zip of its associated files
        assert sorted(archive.namelist()) == sorted([LABELS_FILE, CARD_FILE])


def test_video_model_normalization_passes_the_prior_channel_through(tmp_path):
    """RGB + previous-frame mask: the mask channel is already 0..1 (mean 0, std 1); MediaPipe cannot feed it."""
    from portrait_sdk.export import export_model
    from portrait_sdk.keras_env import keras

    inputs = keras.Input((SIZE, SIZE, 4), name="image")
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs), name="hair_segmenter")
    meta = read_metadata(export_model(model, tmp_path, "hair", "float32", latency_runs=1))
    assert (meta["input"]["mean"], meta["input"]["std"]) == ((0.0,) * 4, (255.0, 255.0, 255.0, 1.0))
    assert (meta["input"]["min"], meta["input"]["max"], meta["labels"]) == ((0.0,) * 4, (1.0,) * 4,
                                                                            ("background", "hair"))


def test_attaching_again_replaces_the_metadata(folder, tmp_path):
    path = export_path(folder, "softmax", "float32")
    card = ModelCard.load(card_path(path))
    renamed = dataclasses.replace(card, name="renamed", version="2.0.0")
    model = attach_metadata(path.read_bytes(), renamed)
    meta = read_metadata(model)
    assert (meta["name"], meta["version"], meta["card"]["name"]) == ("renamed", "2.0.0", "renamed")
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        assert sorted(archive.namelist()) == sorted([LABELS_FILE, CARD_FILE])
    x = np.random.default_rng(4).uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    (tmp := tmp_path / "renamed.tflite").write_bytes(model)
    assert np.array_equal(litert_outputs(tmp, x)[0], litert_outputs(path, x)[0])


def test_file_without_metadata_is_refused(tmp_path):
    from portrait_sdk.export import to_tflite

    with pytest.raises(ValueError, match="model bytes: has no TFLite Model Metadata"):
        read_metadata(to_tflite(tiny_model("portraitnet", 2)))
    (bogus := tmp_path / "bogus.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match=f"{bogus}: not a TFLite flatbuffer"):
        read_metadata(bogus)


def test_reading_metadata_needs_no_tensorflow(folder):
    code = BLOCK_TENSORFLOW + textwrap.dedent(f"""
        from portrait_sdk.metadata import read_metadata
        meta = read_metadata({str(export_path(folder, "sigmoid", "int8"))!r})
        assert meta["labels"] == ("person",), meta
        assert not any(m.split(".")[0] in ("tensorflow", "tf_keras", "mediapipe") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
