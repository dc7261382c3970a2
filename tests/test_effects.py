"""The mask-driven effects: exact at alpha 0 and 1, no halo around a blurred person, hair dye that keeps the hair's
luminance, nail polish with a highlight, the shared registry, and clear errors on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from portrait_sdk.effects import (EFFECTS, MAX_BLUR_SIGMA, blur_background, fit_cover, get_effect, gradient_background,
                                  matte_view, paint_nails, parse_color, recolor_hair, replace_background)

H, W = 48, 64


def _frame(seed: int = 0) -> np.ndarray:
    """Smooth random colour blobs plus pixel noise: texture for blur and luminance tests."""
    rng = np.random.default_rng(seed)
    blobs = cv2.resize(rng.integers(0, 256, (4, 5, 3), np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(blobs + rng.integers(-20, 21, (H, W, 3)), 0, 255).astype(np.uint8)


def _disc(radius: float = 14.0) -> np.ndarray:
    """A soft disc in the middle: 1 inside, 0 outside, a 2-pixel ramp between."""
    y, x = np.mgrid[0:H, 0:W]
    distance = np.hypot(y - H / 2, x - W / 2)
    return np.clip((radius - distance) / 2 + 0.5, 0, 1).astype(np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


OPTIONS = {"strength": 0.7, "color": (40, 160, 90), "gloss": 0.8, "background": gradient_background((30, 90))}


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_every_effect_returns_an_rgb_frame_of_the_input_size(name):
    out = EFFECTS[name](_frame(), _disc(), **OPTIONS)  # each effect ignores the options it does not take
    assert out.shape == (H, W, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("name", ["blur", "replace"])
def test_full_alpha_keeps_the_person_exactly(name):
    frame = _frame()
    np.testing.assert_array_equal(EFFECTS[name](frame, np.ones((H, W), np.float32), **OPTIONS), frame)


@pytest.mark.parametrize("name", ["hair-color", "nails"])
def test_zero_alpha_leaves_the_frame_exactly(name):
    frame = _frame()
    np.testing.assert_array_equal(EFFECTS[name](frame, np.zeros((H, W), np.float32), **OPTIONS), frame)


def test_replace_with_zero_alpha_is_the_background_exactly():
    background = _frame(seed=5)
    out = replace_background(_frame(), np.zeros((H, W), np.float32), background)
    np.testing.assert_array_equal(out, background)


def test_blur_with_zero_alpha_is_a_blurred_frame():
    frame = _frame()
    out = blur_background(frame, np.zeros((H, W), np.float32), strength=1.0)
    assert np.abs(np.diff(out.astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(frame.astype(float), axis=1)).mean()
    assert abs(out.astype(float).mean() - frame.astype(float).mean()) < 3  # blurred, not darkened
    np.testing.assert_array_equal(blur_background(frame, np.zeros((H, W), np.float32), strength=0.0), frame)


def test_blur_keeps_the_person_colour_out_of_the_background():
    """A red person on a blue wall: the blurred wall next to the person must stay blue (no red halo)."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = (0, 0, 255)
    alpha = _disc()
    frame[alpha > 0.5] = (255, 0, 0)
    out = blur_background(frame, alpha, strength=1.0)
    ring = (alpha == 0) & (_disc(radius=20.0) > 0)  # background pixels within 6 px of the person
    assert out[ring][:, 0].max() < 30, "the person's red leaked into the blurred background"
    naive = cv2.GaussianBlur(frame, (0, 0), MAX_BLUR_SIGMA * min(H, W))  # the same blur, unweighted
    assert naive[ring][:, 0].max() > 60  # which shows the halo this test looks for


def test_matte_view_shows_the_alpha_in_grey():
    alpha = _disc()
    out = matte_view(_frame(), alpha)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    np.testing.assert_array_equal(out[..., 0], np.rint(alpha * 255).astype(np.uint8))


def test_hair_colour_keeps_the_luminance_texture_and_takes_the_colour():
    frame = _frame()
    target = (150, 40, 60)
    out = recolor_hair(frame, np.ones((H, W), np.float32), target, strength=1.0)
    before, after = _luma(frame).ravel(), _luma(out).ravel()
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(after[order]) >= -1.0), "luminance order of the hair changed"
    assert np.corrcoef(before, after)[0, 1] > 0.98
    middle = (before > 60) & (before < 190)  # away from clipping, the dye's hue shows
    hue = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)[..., 0].ravel()[middle].astype(int)
    target_hue = int(cv2.cvtColor(np.uint8([[target]]), cv2.COLOR_RGB2HSV)[0, 0, 0])
    assert np.median(np.minimum(abs(hue - target_hue), 180 - abs(hue - target_hue))) <= 6


def test_hair_colour_strength_blends_with_the_original():
    frame, ones = _frame(), np.ones((H, W), np.float32)
    np.testing.assert_array_equal(recolor_hair(frame, ones, strength=0.0), frame)
    full = recolor_hair(frame, ones, strength=1.0).astype(int)
    half = recolor_hair(frame, ones, strength=0.5).astype(int)
    assert np.abs(half - (full + frame) / 2).max() <= 1.0


def test_nails_are_painted_the_colour_with_a_gloss_highlight():
    frame, alpha = _frame(), _disc()
    color = (200, 20, 60)
    matte = paint_nails(frame, alpha, color, gloss=0.0)
    inside = alpha == 1
    mean = matte[inside].astype(float).mean(axis=0)
    assert mean[0] > 2 * mean[1] and mean[0] > 2 * mean[2], f"polish should be red, got mean {mean}"
    np.testing.assert_array_equal(matte[alpha == 0], frame[alpha == 0])
    glossy = paint_nails(frame, alpha, color, gloss=1.0)
    lift = _luma(glossy) - _luma(matte)
    assert lift.max() > 40, "gloss adds no highlight"
    assert (lift >= -1).all() and np.abs(lift[alpha == 0]).max() == 0


def test_fit_cover_fills_the_frame_and_keeps_the_aspect():
    wide = np.zeros((20, 80, 3), np.uint8)
    wide[:, 38:42] = 255  # a vertical line in the middle
    out = fit_cover(wide, (H, W))
    assert out.shape == (H, W, 3)
    columns = np.flatnonzero(out[H // 2, :, 0] > 128)
    assert columns.size and abs(columns.mean() - W / 2) < 2  # centred crop
    assert 6 <= columns.size <= 12  # the 4-px line scaled by 48 / 20, not stretched sideways


@pytest.mark.parametrize("call, message", [
    (lambda f, a: blur_background(f, a[:-1]), "does not match"),
    (lambda f, a: replace_background(f, a.T.copy(), f), "does not match"),
    (lambda f, a: recolor_hair(f, a[..., None]), "2-D"),
    (lambda f, a: matte_view(f, (a * 255).astype(np.uint8)), "float"),
    (lambda f, a: paint_nails(f, a * 2), r"\[0, 1\]"),
    (lambda f, a: blur_background(f.astype(np.float32), a), "uint8"),
    (lambda f, a: blur_background(f[..., :2], a), r"\(H, W, 3\)"),
    (lambda f, a: blur_background(f, a, strength=1.5), "strength"),
    (lambda f, a: recolor_hair(f, a, color=(300, 0, 0)), "color"),
    (lambda f, a: replace_background(f, a, np.zeros((4, 4), np.uint8)), "background"),
])
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(_frame(), _disc())


def test_nan_alpha_is_rejected():
    alpha = _disc()
    alpha[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        blur_background(_frame(), alpha)


def test_parse_color_and_registry_lookup():
    assert parse_color("#ff8000") == parse_color("FF8000") == parse_color("255, 128, 0") == (255, 128, 0)
    for bad in ("purple", "#12345", "1,2", "0,0,256"):
        with pytest.raises(ValueError, match="color"):
            parse_color(bad)
    assert get_effect("hair-color").tasks == ("hair",) and "portrait" in get_effect("blur").tasks
    with pytest.raises(ValueError, match="unknown effect"):
        get_effect("sparkles")
