"""The LiteRT runtime: card-driven pre/post-processing, prior feedback, temporal smoothing, guided filter, errors.

The fixture converts three tiny Keras models whose outputs are plain functions of their input channels, so every
mapping (letterbox, stretch, colour order, normalisation, softmax channel, channel-4 feedback) has an exact answer.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path
from portrait_sdk.runtime import GuidedFilter, Segmenter, Smoothing, ema_blend, uncertainty_blend

SIZE = 32


def _card(name: str, channels: int = 3, resize: str = "letterbox", kind: str = "sigmoid", **input_options):
    output = OutputSpec(kind="sigmoid", labels=("person",), foreground_channel=0) if kind == "sigmoid" \
        else OutputSpec(kind="softmax")
    return ModelCard(name=name, architecture="test", task="portrait", precision="float32",
                     input=InputSpec(SIZE, SIZE, channels=channels, resize=resize, **input_options), output=output)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> .tflite path: 'channel0' (output = input channel 0), 'softmax' (softmax of channels 0 and 1),
    'prior' (4 channels, output = (channel 0 + channel 3) / 2). Each has a card; more cards are written by tests."""
    from portrait_sdk.export import to_tflite
    from portrait_sdk.keras_env import keras

    folder = tmp_path_factory.mktemp("runtime_models")
    graphs = {
        "channel0": (3, lambda x: keras.layers.Lambda(lambda t: t[..., :1])(x), "sigmoid"),
        "softmax": (3, lambda x: keras.layers.Softmax()(keras.layers.Lambda(lambda t: t[..., :2])(x)), "softmax"),
        "prior": (4, lambda x: keras.layers.Lambda(lambda t: 0.5 * (t[..., :1] + t[..., 3:]))(x), "sigmoid"),
    }
    paths = {}
    for name, (channels, head, kind) in graphs.items():
        inputs = keras.Input((SIZE, SIZE, channels))
        path = folder / f"{name}.tflite"
        path.write_bytes(to_tflite(keras.Model(inputs, head(inputs))))
        _card(name, channels, "stretch", kind).save(card_path(path))
        paths[name] = path
    return paths


def _variant(models, tmp_path, card: ModelCard, base: str = "channel0"):
    """A copy of a fixture model with another card."""
    path = tmp_path / f"{card.name}.tflite"
    shutil.copy(models[base], path)
    card.save(card_path(path))
    return path


def _ramp(height: int, width: int) -> np.ndarray:
    """An RGB frame whose channel 0 rises along x and y (so a shifted mapping shows), other channels noise."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame[..., 0] = np.round(255 * (0.5 * x / (width - 1) + 0.5 * y / (height - 1)))
    return frame


@pytest.mark.parametrize("frame_hw", [(64, 32), (32, 64), (48, 40)])
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_mask_maps_back_to_the_frame(models, tmp_path, frame_hw, resize):
    segmenter = Segmenter.from_file(_variant(models, tmp_path, _card(f"c0_{resize}", resize=resize)))
    frame = _ramp(*frame_hw)
    mask = segmenter.segment(frame)
    assert mask.shape == frame_hw and mask.dtype == np.float32
    np.testing.assert_allclose(mask, frame[..., 0] / 255.0, atol=0.04)


def test_letterbox_pads_with_grey_and_stretch_does_not(models, tmp_path):
    frame = _ramp(64, 32)  # portrait: letterbox puts 8 grey columns each side of a 32x16 image
    letterbox = Segmenter.from_file(_variant(models, tmp_path, _card("lb", resize="letterbox")))
    stretch = Segmenter.from_file(_variant(models, tmp_path, _card("st", resize="stretch")))
    padded = letterbox.preprocess(frame)[0]
    np.testing.assert_allclose(padded[:, :8], 128 / 255, atol=1e-6)
    np.testing.assert_allclose(padded[:, -8:], 128 / 255, atol=1e-6)
    assert not np.allclose(stretch.preprocess(frame)[0, :, :8, 0], 128 / 255, atol=0.01)


def test_colour_order_and_normalisation_follow_the_card(models, tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., 0], frame[..., 2] = 200, 60
    bgr = Segmenter.from_file(_variant(models, tmp_path, _card("bgr", resize="stretch", color_order="BGR")))
    np.testing.assert_allclose(bgr.segment(frame), 60 / 255, atol=1e-5)
    normalised = Segmenter.from_file(_variant(
        models, tmp_path, _card("norm", resize="stretch", mean=(100.0, 0.0, 0.0), std=(155.0, 1.0, 1.0))))
    np.testing.assert_allclose(normalised.segment(frame), (200 - 100) / 155, atol=1e-5)


def test_softmax_output_reads_the_foreground_channel(models, tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., 0], frame[..., 1] = 51, 204  # 0.2, 0.8 after / 255
    person = 1 / (1 + math.exp(-(0.8 - 0.2)))
    np.testing.assert_allclose(Segmenter.from_file(models["softmax"]).segment(frame), person, atol=1e-5)
    card = _card("softmax_bg", kind="softmax", resize="stretch")
    background = replace(card, output=replace(card.output, foreground_channel=0))
    segmenter = Segmenter.from_file(_variant(models, tmp_path, background, base="softmax"))
    np.testing.assert_allclose(segmenter.segment(frame), 1 - person, atol=1e-5)


def test_four_channel_model_gets_the_previous_mask_back(models):
    segmenter = Segmenter.from_file(models["prior"])
    frame = np.full((SIZE, SIZE, 3), 204, np.uint8)
    c = 204 / 255
    first = segmenter.process(frame)
    np.testing.assert_allclose(first, 0.5 * c, atol=1e-5)  # zero prior on the first frame
    second = segmenter.process(frame)
    np.testing.assert_allclose(second, 0.5 * c + 0.5 * first, atol=1e-5)
    np.testing.assert_allclose(segmenter.segment(frame), 0.5 * c, atol=1e-5)  # stateless, state untouched
    np.testing.assert_allclose(segmenter.process(frame), 0.5 * c + 0.5 * second, atol=1e-5)
    segmenter.reset()
    np.testing.assert_allclose(segmenter.process(frame), 0.5 * c, atol=1e-5)
    segmenter.process(frame)
    other_size = np.full((SIZE, 2 * SIZE, 3), 204, np.uint8)
    np.testing.assert_allclose(segmenter.process(other_size), 0.5 * c, atol=1e-5)  # a new stream


@pytest.mark.parametrize("p, prev, expected", [(0.5, 0.2, 0.9 * 0.2 + 0.1 * 0.5), (1.0, 0.0, 1.0),
                                               (0.0, 1.0, 0.0)])
def test_uncertainty_blend_extremes(p, prev, expected):
    out = uncertainty_blend(np.float32([p]), np.float32([prev]))
    np.testing.assert_allclose(out, expected, atol=3e-3)  # 3e-3: the eps inside the logs


def test_uncertainty_blend_by_hand():
    """MediaPipe's calculator keeps eps = 1e-3 inside the logs; without it the same value is 0.5186."""
    p, prev, eps = 0.8, 0.2, 1e-3
    u = 1 + (p * math.log(p + eps) + (1 - p) * math.log(1 - p + eps)) / math.log(2)
    u = 1 - (1 - u) ** 2
    expected = 0.9 * (u * p + (1 - u) * prev) + 0.1 * p
    out = uncertainty_blend(np.float32([p]), np.float32([prev]))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert abs(expected - 0.5186) < 3e-3


def test_ema_blend():
    np.testing.assert_allclose(ema_blend(np.float32([0.8]), np.float32([0.2]), 0.25), 0.35, atol=1e-6)


@pytest.mark.parametrize("smoothing, blend", [
    ("ema", lambda p, prev: ema_blend(p, prev, 0.5)),
    ("uncertainty", uncertainty_blend),
    (Smoothing("ema", alpha=0.2), lambda p, prev: ema_blend(p, prev, 0.2)),
    ("none", lambda p, prev: p),
])
def test_process_smooths_across_frames(models, smoothing, blend):
    segmenter = Segmenter.from_file(models["channel0"], smoothing=smoothing)
    first, second = np.full((SIZE, SIZE, 3), 230, np.uint8), np.full((SIZE, SIZE, 3), 128, np.uint8)
    np.testing.assert_allclose(segmenter.process(first), 230 / 255, atol=1e-5)  # nothing to blend with yet
    expected = blend(np.float32(128 / 255), np.float32(230 / 255))
    np.testing.assert_allclose(segmenter.process(second), expected, atol=1e-5)
    np.testing.assert_allclose(segmenter.segment(second), 128 / 255, atol=1e-5)


def _step_scene(noise: float = 0.1):
    """A 64x64 grey step edge at x = 32, and a soft, noisy mask of it (what an upsampled model mask looks like)."""
    import cv2

    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, 32:] = 255
    soft = cv2.GaussianBlur((frame[..., 0] / 255).astype(np.float32), (0, 0), 3)
    return frame, soft + np.random.default_rng(0).normal(0, noise, soft.shape).astype(np.float32)


def test_guided_filter_snaps_to_edges_and_smooths_noise():
    frame, mask = _step_scene()
    refined = GuidedFilter(radius=8, eps=1e-3, subsample=2)(frame, mask)
    assert refined.shape == (64, 64) and refined.min() >= 0 and refined.max() <= 1
    rows = slice(8, 56)
    jump = refined[rows, 32].mean() - refined[rows, 31].mean()  # across the edge: 0.63 here, 0.06 for a box blur
    assert jump > 0.5 and mask[rows, 32].mean() - mask[rows, 31].mean() < 0.2  # much sharper than the input
    assert refined[rows, 4:24].std() < 0.3 * mask[rows, 4:24].std()  # flat areas: noise averaged away


def test_segmenter_refines_at_frame_size(models):
    frame, _ = _step_scene()
    plain = Segmenter.from_file(models["channel0"]).segment(frame)
    refined = Segmenter.from_file(models["channel0"], refine=GuidedFilter(radius=4, subsample=2)).segment(frame)
    assert refined.shape == plain.shape == (64, 64)
    assert refined[:, 31].mean() < plain[:, 31].mean()  # the upsampled ramp at the edge snaps back to it


def test_accepts_non_contiguous_rgb_views(models):
    segmenter = Segmenter.from_file(models["channel0"])
    rgb = _ramp(40, 48)
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # as OpenCV delivers it
    np.testing.assert_allclose(segmenter.segment(bgr[..., ::-1]), rgb[..., 0] / 255, atol=0.04)


def test_timings_are_reported(models):
    segmenter = Segmenter.from_file(models["channel0"])
    segmenter.segment(_ramp(48, 64))
    assert set(segmenter.timings_ms) == {"preprocess", "inference", "postprocess"}
    assert all(ms >= 0 for ms in segmenter.timings_ms.values())


@pytest.mark.parametrize("frame, problem", [
    (np.zeros((32, 32, 3), np.float32), "uint8"),
    (np.zeros((32, 32), np.uint8), "shape"),
    (np.zeros((32, 32, 4), np.uint8), "shape"),
    (np.zeros((1, 32, 32, 3), np.uint8), "shape"),
    (np.zeros((0, 32, 3), np.uint8), "empty"),
    ([[[0, 0, 0]]], "numpy array"),
])
def test_bad_frames_raise_value_error(models, frame, problem):
    segmenter = Segmenter.from_file(models["channel0"])
    for call in (segmenter.segment, segmenter.process):
        with pytest.raises(ValueError, match=problem):
            call(frame)


def test_file_that_is_not_tflite_is_named(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_bytes(b"this is not a flatbuffer")
    with pytest.raises(ValueError, match=r"notes\.tflite.*TFL3"):
        Segmenter.from_file(bad)
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        Segmenter.from_file(tmp_path / "missing.tflite")


def test_model_without_card_says_how_to_add_one(models, tmp_path):
    bare = tmp_path / "bare.tflite"
    shutil.copy(models["channel0"], bare)
    with pytest.raises(FileNotFoundError, match=r"bare\.tflite.*portrait-sdk export"):
        Segmenter.from_file(bare)


def test_card_that_does_not_match_the_model(models, tmp_path):
    wrong_size = replace(_card("wrong"), input=InputSpec(64, 64))
    with pytest.raises(ValueError, match=r"wrong\.tflite.*\(1, 32, 32, 3\).*\(1, 64, 64, 3\)"):
        Segmenter.from_file(_variant(models, tmp_path, wrong_size))
    with pytest.raises(ValueError, match="softmax"):
        Segmenter.from_file(_variant(models, tmp_path, _card("one_channel_softmax", kind="softmax")))


def test_output_that_is_not_a_probability(models, tmp_path):
    raw_pixels = _card("raw", std=(1.0, 1.0, 1.0))  # channel 0 passes 0..255 straight through
    segmenter = Segmenter.from_file(_variant(models, tmp_path, raw_pixels))
    with pytest.raises(ValueError, match="not probabilities"):
        segmenter.segment(np.full((8, 8, 3), 200, np.uint8))


def test_bad_options(models):
    with pytest.raises(ValueError, match="smoothing"):
        Segmenter.from_file(models["channel0"], smoothing="median")
    with pytest.raises(ValueError, match="num_threads"):
        Segmenter.from_file(models["channel0"], num_threads=0)
    with pytest.raises(ValueError, match="radius"):
        GuidedFilter(radius=0)


def test_a_file_with_mediapipe_metadata_and_no_card_opens_as_mediapipe_reads_it(shared_dir, tmp_path):
    """MediaPipe's selfie model carries metadata but no card: stretched input, [0, 1] pixels, sigmoid output."""
    model = tmp_path / "selfie.tflite"
    model.write_bytes((shared_dir / "baselines" / "selfie_segmentation_with_metadata.tflite").read_bytes())
    segmenter = Segmenter.from_file(model)
    card = segmenter.card
    assert (card.input.height, card.input.width, card.input.resize) == (256, 256, "stretch")
    assert card.input.std == (255.0, 255.0, 255.0) and card.output.kind == "sigmoid"
    frame = np.full((48, 64, 3), 90, np.uint8)
    prob = segmenter.segment(frame)
    assert prob.shape == (48, 64) and 0.0 <= prob.min() <= prob.max() <= 1.0
