"""Training-time augmentation in numpy + OpenCV (no TensorFlow): PortraitNet, MMNet and the video prior channel.

Every random function takes an explicit ``rng: np.random.Generator`` and draws only from it, so a sample is a pure
function of its inputs and the generator's seed (the tf.data pipeline seeds one generator per (seed, epoch, index)).

Conventions: images are RGB ``uint8`` H×W×3; labels (masks or alpha mattes) are ``float32`` H×W in [0, 1]; a
``size`` is ``(height, width)``. Geometric augmentations compose into **one** affine matrix applied with a single
``cv2.warpAffine`` (one interpolation, and image and label are warped by the very same matrix). Labels are warped
with *linear* interpolation and kept soft (an alpha matte must stay continuous; for a binary mask the result is a
mask with a 1-px soft edge, which the cross-entropy losses accept as a soft target and metrics threshold at 0.5).
``DeformConfig(label_interpolation="nearest")`` keeps binary masks binary, as PortraitNet's code does.

What is implemented, and where it departs from the sources (MODELS.md §1, §2, §4):

* ``deform`` (PortraitNet): rotation U(-45°, 45°), scale U(0.5, 1.5), translation ±¼ of the output size, horizontal
  flip p = 0.5, grey (128) border for the image and 0 for the label. PortraitNet centres and scales on the person's
  bounding box; here the reference frame is the whole image fitted into the output (``fit="pad"``: letterboxed
  with grey, PortraitNet's test-time preprocessing; ``fit="stretch"``: MediaPipe's), so scale 1 with no rotation
  reproduces the validation input exactly. The factors are drawn from continuous uniforms (PortraitNet draws
  tenths).
* ``texture`` (PortraitNet): colour ×[0.4, 1.6], brightness ×[0.4, 1.6], contrast ×[0.6, 1.4], sharpness
  ×[0.8, 1.2] (OpenCV re-implementations of PIL's ``ImageEnhance``, see ``_blend``), blur (Gaussian / median / box,
  kernel 3 or 5), additive Gaussian noise σ ~ U(0, 10). Each step is applied independently with p = 0.5
  (PortraitNet's code gates the four enhancers together with one coin).
* ``two_views``: PortraitNet's consistency-constraint pair A = deform(x), A′ = texture(A).
* ``mmnet_augment`` (MMNet, for matting): stretch-resize, independent x/y scale U(1, 1.15) with a random crop back to
  the output size, flip p = 0.5, and with p = 0.5 a rotation U(±15°) zoomed in just enough to crop the empty
  corners away.
* ``composite_on_background``: alpha-composite a foreground over a random crop of a people-free background.
* ``synthesize_prior`` / ``video_sample``: the previous-frame mask for 4-channel video models (PortraitNet's prior
  channel, MediaPipe hair's training trick): ``empty`` (first frame, new person), ``affine_small`` /
  ``affine_large`` (the GT under a small or large affine distortion, so the net learns both to follow a good prior
  and to reject a bad one) and ``elastic`` (a smooth random warp standing in for PortraitNet's 4-point thin-plate
  spline, see ``_prior_maps``). ``video_sample`` additionally implements PortraitNet's other variant: with
  probability ``frame_p`` the *frame* (image and label) is warped and the prior is the clean label, mimicking
  camera motion between the previous frame and this one. PortraitNet's motion blur and perspective warps are not
  implemented.
* ``contour_map``: PortraitNet's boundary target, the contours of the binary mask drawn 4 px thick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from portrait_sdk.preprocess import GREY, fit_pair

Size = tuple[int, int]
Warp = tuple[np.ndarray, np.ndarray]

FITS = ("pad", "stretch")
PRIOR_KINDS = ("empty", "affine_small", "affine_large", "elastic")


# ----------------------------------------------------------------------------------------------------------------
# configuration


def _check_range(name: str, value: tuple[float, float], low: float = -np.inf) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a (min, max) pair with {low} <= min <= max, got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class DeformConfig:
    """PortraitNet's deformation. ``translate`` is the maximum shift as a fraction of the output size (±¼)."""

    angle: tuple[float, float] = (-45.0, 45.0)
    scale: tuple[float, float] = (0.5, 1.5)
    translate: float = 0.25
    flip_p: float = 0.5
    fit: str = "pad"
    label_interpolation: str = "linear"
    border_value: int = GREY

    def __post_init__(self) -> None:
        _check_range("DeformConfig.angle", self.angle)
        _check_range("DeformConfig.scale", self.scale, low=1e-3)
        _check_probability("DeformConfig.flip_p", self.flip_p)
        if self.translate < 0:
            raise ValueError(f"DeformConfig.translate must be >= 0, got {self.translate!r}")
        if self.fit not in FITS:
            raise ValueError(f"DeformConfig.fit must be one of {FITS}, got {self.fit!r}")
        if self.label_interpolation not in ("linear", "nearest"):
            raise ValueError(f"DeformConfig.label_interpolation must be 'linear' or 'nearest', "
                             f"got {self.label_interpolation!r}")
        if not 0 <= self.border_value <= 255:
            raise ValueError(f"DeformConfig.border_value must be in [0, 255], got {self.border_value!r}")


@dataclass(frozen=True)
class TextureConfig:
    """PortraitNet's texture augmentation; each of the six steps is applied independently with probability ``p``."""

    p: float = 0.5
    color: tuple[float, float] = (0.4, 1.6)
    brightness: tuple[float, float] = (0.4, 1.6)
    contrast: tuple[float, float] = (0.6, 1.4)
    sharpness: tuple[float, float] = (0.8, 1.2)
    blur_kernels: tuple[int, ...] = (3, 5)
    noise_sigma: tuple[float, float] = (0.0, 10.0)

    def __post_init__(self) -> None:
        _check_probability("TextureConfig.p", self.p)
        for name in ("color", "brightness", "contrast", "sharpness", "noise_sigma"):
            _check_range(f"TextureConfig.{name}", getattr(self, name), low=0.0)
        if not self.blur_kernels or any(k < 1 or k % 2 == 0 for k in self.blur_kernels):
            raise ValueError(f"TextureConfig.blur_kernels must be odd positive sizes, got {self.blur_kernels!r}")


@dataclass(frozen=True)
class MattingAugConfig:
    """MMNet's light augmentation. ``composite_p`` is the probability that the pipeline swaps the background
    (only when it is given backgrounds)."""

    scale: tuple[float, float] = (1.0, 1.15)
    flip_p: float = 0.5
    rotate_p: float = 0.5
    max_angle: float = 15.0
    composite_p: float = 0.5

    def __post_init__(self) -> None:
        _check_range("MattingAugConfig.scale", self.scale, low=1.0)
        for name in ("flip_p", "rotate_p", "composite_p"):
            _check_probability(f"MattingAugConfig.{name}", getattr(self, name))
        if not 0 <= self.max_angle < 90:
            raise ValueError(f"MattingAugConfig.max_angle must be in [0, 90), got {self.max_angle!r}")


@dataclass(frozen=True)
class CompositeConfig:
    """Background variety and negatives for segmentation (used when the pipeline is given backgrounds).

    With probability ``negative_p`` a sample is a background photo alone with an empty label (people-free scenes
    must stay empty); with probability ``p`` the labelled foreground is pasted, scaled by U(``scale``) of the
    image size, at a random position onto a background (small full-body figures, off-centre people). Without
    either, every training image is a centred head-and-shoulders shape, and the model learns that shape as a prior.
    """

    p: float = 0.0
    negative_p: float = 0.0
    scale: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self) -> None:
        _check_probability("CompositeConfig.p", self.p)
        _check_probability("CompositeConfig.negative_p", self.negative_p)
        _check_probability("CompositeConfig.p + negative_p", self.p + self.negative_p)
        _check_range("CompositeConfig.scale", self.scale, low=1e-2)


@dataclass(frozen=True)
class PriorConfig:
    """Previous-frame mask synthesis.

    ``kinds``: (kind, probability) pairs over ``PRIOR_KINDS``, probabilities summing to 1. ``affine_small`` /
    ``affine_large``: maximum corner displacement as a fraction of the size (PortraitNet uses 5 %). ``elastic``:
    maximum control-point displacement (fraction of the size) on an ``elastic_grid`` × ``elastic_grid`` grid.
    ``frame_p``: probability (in ``video_sample``) of warping the frame instead of the prior.
    """

    kinds: tuple[tuple[str, float], ...] = (("empty", 0.3), ("affine_small", 0.3), ("affine_large", 0.15),
                                            ("elastic", 0.25))
    affine_small: float = 0.05
    affine_large: float = 0.2
    elastic: float = 0.05
    elastic_grid: int = 4
    frame_p: float = 0.2

    def __post_init__(self) -> None:
        names = [k for k, _ in self.kinds]
        unknown = sorted(set(names) - set(PRIOR_KINDS))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"PriorConfig.kinds must name distinct kinds from {PRIOR_KINDS}, got {names!r}")
        probs = [p for _, p in self.kinds]
        if any(p < 0 for p in probs) or not np.isclose(sum(probs), 1.0):
            raise ValueError(f"PriorConfig.kinds probabilities must be >= 0 and sum to 1, got {probs!r}")
        for name in ("affine_small", "affine_large", "elastic"):
            if getattr(self, name) < 0:
                raise ValueError(f"PriorConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.elastic_grid < 2:
            raise ValueError(f"PriorConfig.elastic_grid must be >= 2, got {self.elastic_grid!r}")
        _check_probability("PriorConfig.frame_p", self.frame_p)


# ----------------------------------------------------------------------------------------------------------------
# input checks and the shared affine warp


def check_pair(image: np.ndarray, label: np.ndarray, where: str = "input") -> None:
    """Raise ValueError unless ``image`` is uint8 H×W×3 and ``label`` float32 H×W in [0, 1] of the same size."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"{where}: image must be an RGB uint8 HxWx3 array, got "
                         f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    if not (isinstance(label, np.ndarray) and label.dtype == np.float32 and label.shape == image.shape[:2]):
        raise ValueError(f"{where}: label must be a float32 array of shape {image.shape[:2]}, got "
                         f"{getattr(label, 'dtype', type(label))} {getattr(label, 'shape', '')}")
    if label.size and (label.min() < 0.0 or label.max() > 1.0):
        raise ValueError(f"{where}: label values must lie in [0, 1], got [{label.min()}, {label.max()}]")


def check_size(size: Sequence[int]) -> Size:
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive entries, got {size!r}")
    return int(size[0]), int(size[1])


def _centre(hw: Sequence[int]) -> np.ndarray:
    """Centre of an image in pixel-centre coordinates (x, y), the convention of cv2.warpAffine."""
    return np.array([(hw[1] - 1) / 2.0, (hw[0] - 1) / 2.0])


def _affine(src_hw: Sequence[int], size: Size, fit: str, linear: np.ndarray = np.eye(2),
            shift: np.ndarray = np.zeros(2)) -> np.ndarray:
    """2×3 matrix mapping source pixels to output pixels: ``dst = c_dst + linear @ fit @ (src - c_src) + shift``.

    ``fit`` first maps the whole source image onto the output ("pad": uniform scale, centred, i.e. letterbox;
    "stretch": independent x / y scales, cv2.resize's geometry); ``linear`` then acts about the output centre.
    """
    h, w = src_hw
    sx, sy = size[1] / w, size[0] / h
    base = np.diag([min(sx, sy)] * 2) if fit == "pad" else np.diag([sx, sy])
    a = linear @ base
    t = _centre(size) + shift - a @ _centre(src_hw)
    return np.hstack([a, t[:, None]])


def _prescale(array: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area-downscale ``array`` first when ``matrix`` shrinks it, so the warp does not alias; returns the new array
    and the matrix that maps the downscaled pixels to the same output pixels."""
    factor = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if factor >= 1.0:
        return array, matrix
    h, w = array.shape[:2]
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    small = cv2.resize(array, (new_w, new_h), interpolation=cv2.INTER_AREA)
    fx, fy = new_w / w, new_h / h
    back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    return small, matrix @ back


def _warp(image: np.ndarray, label: np.ndarray, matrix: np.ndarray, size: Size, *,
          image_border: int | None = GREY, label_nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Warp image and label with the same 2×3 matrix to ``size``. ``image_border=None`` replicates the edge
    pixels (for warps that show no border, like cv2.resize); otherwise the image gets that grey level and the
    label 0."""
    if image_border is None:
        border = dict(borderMode=cv2.BORDER_REPLICATE)
        label_border = border
    else:
        border = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=(image_border,) * 3)
        label_border = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    dsize = (size[1], size[0])
    small, m = _prescale(image, matrix)
    out_image = cv2.warpAffine(small, m, dsize, flags=cv2.INTER_LINEAR, **border)
    if label_nearest:  # no area prescale either: it would make a binary mask soft
        out_label = cv2.warpAffine(label, matrix, dsize, flags=cv2.INTER_NEAREST, **label_border)
    else:
        small, m = _prescale(label, matrix)
        out_label = cv2.warpAffine(small, m, dsize, flags=cv2.INTER_LINEAR, **label_border)
    return out_image, np.clip(out_label, 0.0, 1.0).astype(np.float32)


def _rotation(degrees: float) -> np.ndarray:
    """Rotation in image coordinates (y down): positive angles turn the content counter-clockwise on screen."""
    r = np.deg2rad(degrees)
    return np.array([[np.cos(r), np.sin(r)], [-np.sin(r), np.cos(r)]])


def _flip(rng: np.random.Generator, p: float) -> np.ndarray:
    return np.diag([-1.0 if rng.random() < p else 1.0, 1.0])


# ----------------------------------------------------------------------------------------------------------------
# geometry


def resize_pair(image: np.ndarray, label: np.ndarray, size: Sequence[int],
                fit: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """Validation preprocessing: fit the whole image into ``size`` ("pad": letterbox with grey 128, label 0;
    "stretch": ignore the aspect ratio), exactly as the runtime feeds the model (``portrait_sdk.preprocess``).
    ``deform`` with identity parameters lands within interpolation error of it."""
    check_pair(image, label)
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    return fit_pair(image, label, check_size(size), "letterbox" if fit == "pad" else "stretch")


def deform(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: Sequence[int],
           config: DeformConfig = DeformConfig()) -> tuple[np.ndarray, np.ndarray]:
    """PortraitNet's deformation: one random affine (rotation, scale, translation, flip) to ``size``."""
    check_pair(image, label)
    size = check_size(size)
    angle = rng.uniform(*config.angle)
    scale = rng.uniform(*config.scale)
    shift = rng.uniform(-config.translate, config.translate, 2) * np.array([size[1], size[0]])
    linear = scale * _rotation(angle) @ _flip(rng, config.flip_p)
    matrix = _affine(image.shape[:2], size, config.fit, linear, shift)
    return _warp(image, label, matrix, size, image_border=config.border_value,
                 label_nearest=config.label_interpolation == "nearest")


def _inscribed_zoom(size: Size, degrees: float) -> float:
    """Zoom that makes a rotated output-sized frame cover the output, i.e. crops the empty corners away.

    A centred w×h rectangle scaled by z fits inside the w×h frame rotated by θ iff
    z·(w·|cos θ| + h·|sin θ|) ≤ w and z·(w·|sin θ| + h·|cos θ|) ≤ h; the crop is then resized back (zoom 1/z).
    """
    h, w = size
    c, s = abs(np.cos(np.deg2rad(degrees))), abs(np.sin(np.deg2rad(degrees)))
    return min(w / (w * c + h * s), h / (w * s + h * c))


def mmnet_augment(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: Sequence[int],
                  config: MattingAugConfig = MattingAugConfig()) -> tuple[np.ndarray, np.ndarray]:
    """MMNet's light augmentation (stretch-resize, x/y scale + random crop, flip, optional rotation + centre crop),
    composed into one affine so image and alpha are interpolated once."""
    check_pair(image, label)
    size = check_size(size)
    scales = rng.uniform(*config.scale, 2)
    # A random crop of the scaled image is a shift of at most half the overhang in each direction.
    shift = rng.uniform(-1.0, 1.0, 2) * (scales - 1.0) * np.array([size[1], size[0]]) / 2.0
    linear = _flip(rng, config.flip_p) @ np.diag(scales)
    if rng.random() < config.rotate_p:
        angle = rng.uniform(-config.max_angle, config.max_angle)
        rotate = _rotation(angle) / _inscribed_zoom(size, angle)
        linear, shift = rotate @ linear, rotate @ shift
    matrix = _affine(image.shape[:2], size, "stretch", linear, shift)
    return _warp(image, label, matrix, size, image_border=None)


# ----------------------------------------------------------------------------------------------------------------
# texture


def _blend(image: np.ndarray, degenerate: np.ndarray | float, factor: float) -> np.ndarray:
    """PIL ``ImageEnhance``: ``degenerate + factor·(image − degenerate)``, clipped to [0, 255].

    Degenerate images: colour → greyscale (ITU-R 601 luma, PIL's "L"); brightness → black; contrast → the mean
    luma; sharpness → the image smoothed with PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]]/13.
    """
    return np.clip(degenerate + factor * (image - degenerate), 0.0, 255.0)


def _luma(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0


def _blur(image: np.ndarray, rng: np.random.Generator, kernels: tuple[int, ...]) -> np.ndarray:
    """PortraitNet's blur: Gaussian (p 0.3), median (p 0.3) or box (p 0.4), kernel drawn from ``kernels``."""
    k = int(rng.choice(kernels))
    select = rng.random()
    u8 = np.round(image).astype(np.uint8)  # cv2.medianBlur takes float32 only for k <= 5; blur uint8 throughout
    if select < 0.3:
        out = cv2.GaussianBlur(u8, (k, k), 0)
    elif select < 0.6:
        out = cv2.medianBlur(u8, k)
    else:
        out = cv2.blur(u8, (k, k))
    return out.astype(np.float32)


def texture(image: np.ndarray, rng: np.random.Generator, config: TextureConfig = TextureConfig()) -> np.ndarray:
    """PortraitNet's texture augmentation on an RGB uint8 image; returns uint8 of the same shape."""
    if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"texture: image must be an RGB uint8 HxWx3 array, got {image.dtype} {image.shape}")
    x = image.astype(np.float32)
    if rng.random() < config.p:
        x = _blend(x, _luma(x)[..., None], rng.uniform(*config.color))
    if rng.random() < config.p:
        x = _blend(x, 0.0, rng.uniform(*config.brightness))
    if rng.random() < config.p:
        x = _blend(x, float(_luma(x).mean()), rng.uniform(*config.contrast))
    if rng.random() < config.p:
        smooth = cv2.filter2D(x, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
        x = _blend(x, smooth, rng.uniform(*config.sharpness))
    if rng.random() < config.p:
        x = _blur(x, rng, config.blur_kernels)
    if rng.random() < config.p:
        x = np.clip(x + rng.normal(0.0, rng.uniform(*config.noise_sigma), x.shape), 0.0, 255.0)
    return np.round(x).astype(np.uint8)


def two_views(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: Sequence[int],
              deform_config: DeformConfig = DeformConfig(),
              texture_config: TextureConfig = TextureConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PortraitNet's consistency pair: A = deform(image), A′ = texture(A); both share the deformed label."""
    view_a, label = deform(image, label, rng, size, deform_config)
    return view_a, texture(view_a, rng, texture_config), label


# ----------------------------------------------------------------------------------------------------------------
# compositing and boundary target


def composite_on_background(fg_image: np.ndarray, alpha: np.ndarray, background: np.ndarray,
                            rng: np.random.Generator, zoom: tuple[float, float] = (1.0, 1.5)) -> np.ndarray:
    """``alpha·fg + (1 − alpha)·bg`` over a random crop of ``background``; the alpha itself is unchanged.

    The background is scaled to cover the foreground, times a random zoom U(``zoom``), then cropped at a random
    position. Real photos with a soft alpha carry some of their old background in the semi-transparent pixels
    (no foreground colour estimation is done), which is acceptable for augmentation.
    """
    check_pair(fg_image, alpha, "composite_on_background")
    if not (isinstance(background, np.ndarray) and background.dtype == np.uint8 and background.ndim == 3
            and background.shape[2] == 3 and min(background.shape[:2]) > 0):
        raise ValueError(f"composite_on_background: background must be an RGB uint8 HxWx3 array, got "
                         f"{getattr(background, 'dtype', type(background))} {getattr(background, 'shape', '')}")
    _check_range("zoom", zoom, low=1.0)
    bg = _cover(background, alpha.shape, rng, zoom=rng.uniform(*zoom))
    a = alpha[..., None]
    return np.round(a * fg_image + (1.0 - a) * bg).astype(np.uint8)


def _cover(background: np.ndarray, hw: Sequence[int], rng: np.random.Generator, zoom: float = 1.0) -> np.ndarray:
    """A random crop of ``background`` scaled to cover ``hw`` times ``zoom`` (float32)."""
    h, w = hw
    bh, bw = background.shape[:2]
    scale = max(h / bh, w / bw) * zoom
    new_w, new_h = max(w, int(np.ceil(bw * scale))), max(h, int(np.ceil(bh * scale)))
    bg = cv2.resize(background, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = rng.integers(0, new_h - h + 1), rng.integers(0, new_w - w + 1)
    return bg[y0:y0 + h, x0:x0 + w].astype(np.float32)


def background_variety(image: np.ndarray, label: np.ndarray, pick_background: Callable[[int], np.ndarray] | None,
                       count: int, rng: np.random.Generator,
                       config: CompositeConfig) -> tuple[np.ndarray, np.ndarray]:
    """``CompositeConfig``'s negatives and pastes: the pair unchanged, a background with an empty label, or the
    foreground (label as alpha) scaled and placed at random on a background; sizes are kept.
    ``pick_background(i)`` loads background ``i`` of ``count`` (RGB uint8), only when one is used."""
    draw = rng.random()
    if pick_background is None or not count or draw >= config.negative_p + config.p:
        return image, label
    background = _cover(pick_background(int(rng.integers(count))), label.shape, rng)
    if draw < config.negative_p:
        return np.round(background).astype(np.uint8), np.zeros_like(label)
    h, w = label.shape
    scale = rng.uniform(*config.scale)
    fh, fw = max(1, round(h * scale)), max(1, round(w * scale))
    fg = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = np.clip(cv2.resize(label, (fw, fh), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    y0, x0 = rng.integers(0, h - fh + 1), rng.integers(0, w - fw + 1)
    placed = np.zeros_like(label)
    placed[y0:y0 + fh, x0:x0 + fw] = alpha
    canvas = background.copy()
    region = canvas[y0:y0 + fh, x0:x0 + fw]
    canvas[y0:y0 + fh, x0:x0 + fw] = alpha[..., None] * fg + (1.0 - alpha[..., None]) * region
    return np.round(canvas).astype(np.uint8), placed


def contour_map(label: np.ndarray, width: int = 4, threshold: float = 0.5) -> np.ndarray:
    """PortraitNet's boundary target: contours (all, RETR_TREE) of ``label >= threshold`` drawn ``width`` px thick;
    float32 H×W in {0, 1}."""
    if label.ndim != 2:
        raise ValueError(f"contour_map: label must be HxW, got shape {label.shape}")
    if width < 1:
        raise ValueError(f"contour_map: width must be >= 1, got {width}")
    binary = (label >= threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    edges = np.zeros(label.shape, np.uint8)
    cv2.drawContours(edges, contours, -1, 1, width)
    return edges.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# previous-frame prior


def _choose_kind(rng: np.random.Generator, kinds: Sequence[tuple[str, float]]) -> str:
    names, probs = zip(*kinds)
    probs = np.asarray(probs, dtype=np.float64)
    return str(names[rng.choice(len(names), p=probs / probs.sum())])


def _prior_maps(kind: str, hw: Sequence[int], rng: np.random.Generator, config: PriorConfig) -> Warp:
    """cv2.remap maps (for each output pixel, where to sample) for a non-empty prior kind.

    ``affine_*``: the three corners (0,0), (w,0), (0,h) moved by U(±r)·(w, h) each (PortraitNet's ``data_Affine``
    perturbs both point sets by ±5 %). ``elastic``: a free-form deformation: control-point displacements
    U(±r)·(w, h) on a coarse grid, bicubically upsampled to a smooth per-pixel displacement field (smooth like a
    thin-plate spline through random control points, without solving the TPS system).
    """
    h, w = hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "elastic":
        g = config.elastic_grid
        coarse = rng.uniform(-config.elastic, config.elastic, (g, g, 2)) * np.array([w, h])
        field = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        return xs + field[..., 0], ys + field[..., 1]
    r = config.affine_small if kind == "affine_small" else config.affine_large
    src = np.float32([[0, 0], [w, 0], [0, h]])
    dst = src + rng.uniform(-r, r, (3, 2)).astype(np.float32) * np.float32([w, h])
    inverse = cv2.getAffineTransform(dst, src)  # output pixel -> source pixel
    return (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2],
            inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2])


def _remap(array: np.ndarray, maps: Warp) -> np.ndarray:
    """Sample with replicated borders: a moved camera or mask still touches the frame edge it touched."""
    return cv2.remap(array, maps[0].astype(np.float32), maps[1].astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def synthesize_prior(label: np.ndarray, rng: np.random.Generator,
                     config: PriorConfig = PriorConfig()) -> np.ndarray:
    """The previous-frame mask: a kind drawn from ``config.kinds``, applied to the ground truth."""
    if label.ndim != 2 or label.dtype != np.float32:
        raise ValueError(f"synthesize_prior: label must be float32 HxW, got {label.dtype} {label.shape}")
    kind = _choose_kind(rng, config.kinds)
    if kind == "empty":
        return np.zeros_like(label)
    return np.clip(_remap(label, _prior_maps(kind, label.shape, rng, config)), 0.0, 1.0)


def video_sample(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                 config: PriorConfig = PriorConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, label, prior) for a 4-channel video model.

    With probability ``config.frame_p`` the frame moved instead of the mask: image and label are warped together
    by a non-empty kind (drawn with the configured odds) and the prior is the clean label. Otherwise the frame is
    kept and the prior is ``synthesize_prior(label)``.
    """
    check_pair(image, label, "video_sample")
    moving = [(k, p) for k, p in config.kinds if k != "empty" and p > 0]
    if moving and rng.random() < config.frame_p:
        maps = _prior_maps(_choose_kind(rng, moving), label.shape, rng, config)
        return _remap(image, maps), np.clip(_remap(label, maps), 0.0, 1.0), label
    return image, label, synthesize_prior(label, rng, config)
