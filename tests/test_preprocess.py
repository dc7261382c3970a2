"""One preprocessing contract: training-time validation, int8 calibration, `evaluate` and the runtime feed a model
the same tensor for the same image (``portrait_sdk.preprocess``)."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from tiny_models import SIZE, model_folder

from portrait_sdk import preprocess
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path

HEIGHT, WIDTH = 37, 53  # odd sizes: rounding and the uneven padding split show


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """images/ + masks/ with one noisy photo (PNG, lossless) and its mask."""
    root = tmp_path_factory.mktemp("contract")
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[8:30, 10:40] = 255
    for name, array in (("images", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), ("masks", mask)):
        (root / name).mkdir()
        cv2.imwrite(str(root / name / "000.png"), array)
    return root, image


def tiny_model_as(tmp_path, models, resize: str):
    """The tiny model (tests/tiny_models.py) with a card that fits frames by ``resize``."""
    path = tmp_path / f"tiny_{resize}.tflite"
    shutil.copy(models / "tiny_portrait.tflite", path)
    ModelCard(name=path.stem, architecture="tiny", task="portrait", precision="float32",
              input=InputSpec(SIZE, SIZE, resize=resize), output=OutputSpec()).save(card_path(path))
    return path


@pytest.mark.parametrize("resize", preprocess.RESIZES)
def test_validation_calibration_evaluate_and_runtime_tensors_are_identical(resize, photo_folder, tmp_path,
                                                                            tmp_path_factory, monkeypatch):
    from portrait_sdk import evaluate, export
    from portrait_sdk.data import augment, open_dataset, pipeline
    from portrait_sdk.runtime import Segmenter

    root, image = photo_folder
    model = tiny_model_as(tmp_path, model_folder(tmp_path_factory), resize)
    runtime = Segmenter.from_file(model).preprocess(image)
    assert runtime.shape == (1, SIZE, SIZE, 3)

    # int8 calibration: the converter's representative dataset read from the folder
    [calibration] = next(iter(export.representative_dataset(root / "images", InputSpec(SIZE, SIZE, resize=resize))()))
    np.testing.assert_array_equal(calibration, runtime)

    # training-time validation: the data pipeline's batch, in the [0, 1] the trained Keras model takes
    fit = "pad" if resize == "letterbox" else "stretch"
    config = pipeline.AugmentConfig(deform=augment.DeformConfig(fit=fit))
    dataset = pipeline.make_dataset(open_dataset(root), size=(SIZE, SIZE), batch_size=1, training=False,
                                    config=config)
    features, targets = next(iter(dataset))
    np.testing.assert_allclose(features["image"].numpy(), runtime, rtol=0, atol=1e-7)

    # evaluate: what the runtime is given inside `portrait-sdk evaluate`
    seen = []
    original = Segmenter.preprocess
    monkeypatch.setattr(Segmenter, "preprocess", lambda self, *a, **k: seen.append(original(self, *a, **k)) or seen[-1])
    evaluate.evaluate_model(model, open_dataset(root))
    np.testing.assert_array_equal(seen[0], runtime)

    # the label is fitted into the same box as the image: its top-left corner lands where the image's does
    top, left, h, w = preprocess.fit_box((HEIGHT, WIDTH), (SIZE, SIZE), resize)
    label = targets["mask"].numpy()[0, ..., 0]
    assert label[:top].sum() == 0 and label[top + h:].sum() == 0
    expected = cv2.resize(np.zeros((HEIGHT, WIDTH), np.float32) + (cv2.imread(str(root / "masks" / "000.png"), 0)
                                                                     / 255.0).astype(np.float32),
                          (w, h), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(label[top:top + h, left:left + w], expected, atol=1e-6)


def test_letterbox_geometry_and_grey_padding():
    assert preprocess.fit_box((37, 53), (32, 32), "letterbox") == (5, 0, 22, 32)  # 37 * 32/53 = 22.3 -> 22
    assert preprocess.fit_box((53, 37), (32, 32), "letterbox") == (0, 5, 32, 22)
    assert preprocess.fit_box((37, 53), (32, 32), "stretch") == (0, 0, 32, 32)
    fitted = preprocess.fit(np.full((37, 53, 3), 9, np.uint8), (32, 32), "letterbox")
    assert (fitted[:5] == preprocess.GREY).all() and (fitted[27:] == preprocess.GREY).all()
    assert (fitted[5:27] == 9).all()
    with pytest.raises(ValueError, match="resize must be one of"):
        preprocess.fit_box((4, 4), (2, 2), "crop")


def test_normalize_follows_the_card_and_fills_the_prior_channel():
    spec = InputSpec(2, 2, channels=4, color_order="BGR", mean=(127.5,) * 3, std=(127.5,) * 3, resize="stretch")
    pixels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    x = preprocess.normalize(pixels, spec)
    assert x.shape == (1, 2, 2, 4) and not x[..., 3].any()
    np.testing.assert_allclose(x[0, 0, 0, :3], [-1, -1, 1])  # red, in BGR order, in [-1, 1]
    prior = np.full((2, 2), 0.25, np.float32)
    assert (preprocess.normalize(pixels, spec, prior)[..., 3] == 0.25).all()
