"""Augmentation (numpy + OpenCV): joint geometry of image and label, texture, compositing, contours, priors."""

from __future__ import annotations

import numpy as np
import pytest

from portrait_sdk.data import augment as A


def _blob(h: int = 48, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric mask (blob in the upper left) and an image whose colour equals the mask (255·mask)."""
    yy, xx = np.mgrid[0:h, 0:w]
    label = (((yy - 14) / 10.0) ** 2 + ((xx - 12) / 7.0) ** 2 <= 1.0).astype(np.float32)
    label[30:40, 25:35] = 0.5  # a soft patch, as in an alpha matte
    image = np.repeat(np.round(label * 255).astype(np.uint8)[..., None], 3, axis=2)
    return image, label


def _noise_image(h: int = 48, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_same_geometry(image: np.ndarray, label: np.ndarray) -> None:
    """image was 255·label before the warp; an identical warp keeps that relation up to interpolation rounding."""
    assert np.abs(image[..., 0].astype(np.float32) - 255 * label).max() <= 2.0
    assert label.max() > 0.9, "the blob left the frame; pick another seed"


# --------------------------------------------------------------------------------------------------- geometry


def test_flip_only_mirrors_image_and_label_exactly():
    image, label = _noise_image(), _blob()[1]
    cfg = A.DeformConfig(angle=(0, 0), scale=(1, 1), translate=0.0, flip_p=1.0, fit="stretch")
    out_image, out_label = A.deform(image, label, np.random.default_rng(0), label.shape, cfg)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_label, label[:, ::-1])


@pytest.mark.parametrize("seed", range(6))
def test_deform_warps_image_and_label_identically(seed):
    image, label = _blob()
    cfg = A.DeformConfig(scale=(0.8, 1.2), translate=0.1, border_value=0)  # border 0: image = 255·label holds there
    out_image, out_label = A.deform(image, label, np.random.default_rng(seed), (32, 36), cfg)
    assert out_image.shape == (32, 36, 3) and out_image.dtype == np.uint8
    assert out_label.shape == (32, 36) and out_label.dtype == np.float32
    assert 0.0 <= out_label.min() and out_label.max() <= 1.0
    _assert_same_geometry(out_image, out_label)


def test_deform_is_random_and_seeded():
    image, label = _noise_image(), _blob()[1]
    run = lambda seed: A.deform(image, label, np.random.default_rng(seed), (24, 24))  # noqa: E731
    np.testing.assert_array_equal(run(1)[0], run(1)[0])
    assert not np.array_equal(run(1)[0], run(2)[0])


def test_deform_border_is_grey_for_image_and_zero_for_label():
    image, label = np.zeros((20, 20, 3), np.uint8), np.ones((20, 20), np.float32)
    cfg = A.DeformConfig(angle=(0, 0), scale=(0.5, 0.5), translate=0.0)
    out_image, out_label = A.deform(image, label, np.random.default_rng(0), (40, 40), cfg)
    assert (out_image[0, 0] == 128).all() and out_label[0, 0] == 0.0
    assert (out_image[20, 20] == 0).all() and out_label[20, 20] == 1.0


def test_nearest_label_interpolation_keeps_binary_masks_binary():
    image, label = _noise_image(96, 80), np.round(_blob(96, 80)[1])
    cfg = A.DeformConfig(label_interpolation="nearest")
    _, out_label = A.deform(image, label, np.random.default_rng(3), (30, 30), cfg)
    assert set(np.unique(out_label)) <= {0.0, 1.0}


def test_resize_pair_letterboxes_with_grey_or_stretches():
    image, label = np.full((20, 40, 3), 7, np.uint8), np.ones((20, 40), np.float32)
    padded_image, padded_label = A.resize_pair(image, label, (40, 40), fit="pad")
    assert (padded_image[:9] == 128).all() and (padded_label[:9] == 0).all()
    assert (padded_image[11:29] == 7).all() and (padded_label[11:29] == 1).all()
    stretched_image, stretched_label = A.resize_pair(image, label, (40, 40), fit="stretch")
    assert (stretched_image == 7).all() and (stretched_label == 1).all()


@pytest.mark.parametrize("seed", range(4))
def test_mmnet_augment_same_geometry_and_no_empty_corners(seed):
    image, label = _blob()
    out_image, out_label = A.mmnet_augment(image, label, np.random.default_rng(seed), (32, 32))
    assert out_image.shape == (32, 32, 3) and out_label.shape == (32, 32)
    _assert_same_geometry(out_image, out_label)
    # rotated by the maximum angle, the zoom must hide the rotated frame's corners: a white frame stays white
    cfg = A.MattingAugConfig(rotate_p=1.0, max_angle=15.0)
    white, ones = np.full((48, 64, 3), 255, np.uint8), np.ones((48, 64), np.float32)
    rng = np.random.default_rng(seed)
    out_white, out_ones = A.mmnet_augment(white, ones, rng, (48, 64), cfg)
    assert (out_white == 255).all() and np.allclose(out_ones, 1.0)


def test_inscribed_zoom_formula():
    assert A._inscribed_zoom((100, 100), 0.0) == pytest.approx(1.0)
    assert A._inscribed_zoom((100, 100), 45.0) == pytest.approx(1 / np.sqrt(2))


# --------------------------------------------------------------------------------------------------- texture


def test_texture_keeps_dtype_shape_and_is_seeded():
    image = _noise_image()
    out = A.texture(image, np.random.default_rng(5), A.TextureConfig(p=1.0))
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert not np.array_equal(out, image)
    np.testing.assert_array_equal(out, A.texture(image, np.random.default_rng(5), A.TextureConfig(p=1.0)))
    np.testing.assert_array_equal(A.texture(image, np.random.default_rng(5), A.TextureConfig(p=0.0)), image)


@pytest.mark.parametrize("step, factor", [("color", 0.4), ("brightness", 1.5), ("contrast", 0.6),
                                          ("sharpness", 1.2)])
def test_texture_enhancers_match_pil(step, factor):
    pil_image = pytest.importorskip("PIL.Image")
    enhance = pytest.importorskip("PIL.ImageEnhance")
    image = _noise_image(24, 24, seed=1)
    neutral = dict(color=(1, 1), brightness=(1, 1), contrast=(1, 1), sharpness=(1, 1), blur_kernels=(1,),
                   noise_sigma=(0, 0))
    cfg = A.TextureConfig(p=1.0, **{**neutral, step: (factor, factor)})
    ours = A.texture(image, np.random.default_rng(0), cfg).astype(int)
    enhancer = {"color": enhance.Color, "brightness": enhance.Brightness, "contrast": enhance.Contrast,
                "sharpness": enhance.Sharpness}[step]
    theirs = np.asarray(enhancer(pil_image.fromarray(image)).enhance(factor)).astype(int)
    inner = (slice(1, -1), slice(1, -1))  # PIL leaves the 1-px border of the sharpness filter unfiltered
    assert np.abs(ours[inner] - theirs[inner]).max() <= 2


def test_two_views_share_the_deformation():
    image, label = _noise_image(), _blob()[1]
    view_a, view_a_prime, out_label = A.two_views(image, label, np.random.default_rng(4), (24, 24),
                                                  texture_config=A.TextureConfig(p=1.0))
    ref_a, ref_label = A.deform(image, label, np.random.default_rng(4), (24, 24))
    np.testing.assert_array_equal(view_a, ref_a)
    np.testing.assert_array_equal(out_label, ref_label)
    assert view_a_prime.dtype == np.uint8 and view_a_prime.shape == view_a.shape
    assert not np.array_equal(view_a_prime, view_a)


# --------------------------------------------------------------------------------------------------- compositing


def test_composite_math_on_a_hand_case():
    fg = np.full((4, 6, 3), 200, np.uint8)
    alpha = np.array([[0.0, 0.25, 1.0, 0.5, 0.0, 1.0]] * 4, np.float32)
    background = np.full((2, 3, 3), 40, np.uint8)  # smaller than the foreground: scaled up to cover it
    out = A.composite_on_background(fg, alpha, background, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == fg.shape
    np.testing.assert_array_equal(out[0, :, 0], [40, 80, 200, 120, 40, 200])


def test_composite_rejects_a_bad_background():
    fg, alpha = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="background"):
        A.composite_on_background(fg, alpha, np.zeros((4, 4), np.uint8), np.random.default_rng(0))


def test_contour_map_is_a_4px_ring_on_the_mask_edge():
    label = np.zeros((40, 40), np.float32)
    label[10:30, 10:30] = 1.0
    edges = A.contour_map(label, width=4)
    assert edges.dtype == np.float32 and set(np.unique(edges)) == {0.0, 1.0}
    assert edges[10, 20] == 1 and edges[8, 20] == 1 and edges[11, 20] == 1  # ±2 px around the edge row
    assert edges[20, 20] == 0 and edges[2, 2] == 0 and edges[14, 20] == 0 and edges[6, 20] == 0


# --------------------------------------------------------------------------------------------------- priors


def _only(kind: str, **kwargs) -> A.PriorConfig:
    return A.PriorConfig(kinds=((kind, 1.0),), **kwargs)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 0.5, b >= 0.5
    return (a & b).sum() / max((a | b).sum(), 1)


def test_each_prior_kind_is_produced():
    label = np.zeros((64, 64), np.float32)
    label[16:56, 20:44] = 1.0
    empty = A.synthesize_prior(label, np.random.default_rng(0), _only("empty"))
    assert empty.dtype == np.float32 and not empty.any()
    ious = {}
    for kind in ("affine_small", "affine_large", "elastic"):
        draws = [A.synthesize_prior(label, np.random.default_rng(s), _only(kind)) for s in range(8)]
        for prior in draws:
            assert prior.shape == label.shape and prior.dtype == np.float32
            assert 0.0 <= prior.min() and prior.max() <= 1.0
            assert not np.array_equal(prior, label)
        ious[kind] = np.mean([_iou(prior, label) for prior in draws])
    assert ious["affine_small"] > 0.75 and ious["elastic"] > 0.6
    assert ious["affine_large"] < ious["affine_small"]


def test_default_prior_mix_draws_empty_and_non_empty():
    label = np.ones((16, 16), np.float32)
    label[:, :4] = 0
    priors = [A.synthesize_prior(label, np.random.default_rng(s)) for s in range(40)]
    assert any(not p.any() for p in priors) and any(p.any() for p in priors)


def test_video_sample_frame_variant_warps_the_frame_and_keeps_the_clean_prior():
    image, label = _blob(64, 64)
    out_image, out_label, prior = A.video_sample(image, label, np.random.default_rng(1),
                                                 _only("affine_large", frame_p=1.0))
    np.testing.assert_array_equal(prior, label)
    assert not np.array_equal(out_label, label)
    _assert_same_geometry(out_image, out_label)
    kept_image, kept_label, warped_prior = A.video_sample(image, label, np.random.default_rng(1),
                                                          _only("affine_large", frame_p=0.0))
    assert kept_image is image and kept_label is label and not np.array_equal(warped_prior, label)


# --------------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("make", [
    lambda: A.DeformConfig(scale=(1.5, 0.5)),
    lambda: A.DeformConfig(fit="crop"),
    lambda: A.TextureConfig(blur_kernels=(4,)),
    lambda: A.MattingAugConfig(scale=(0.9, 1.1)),
    lambda: A.PriorConfig(kinds=(("empty", 0.5), ("tps", 0.5))),
    lambda: A.PriorConfig(kinds=(("empty", 0.5), ("elastic", 0.4))),
])
def test_bad_configs_raise(make):
    with pytest.raises(ValueError):
        make()


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="label must be a float32"):
        A.deform(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8), rng, (8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        A.deform(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 2.0, np.float32), rng, (8, 8))
    with pytest.raises(ValueError, match="RGB uint8"):
        A.texture(np.zeros((8, 8), np.uint8), rng)
