"""Video effects driven by a segmentation mask: background blur and replacement, matte view, hair colour, nail polish.

Every effect takes an RGB uint8 frame (H, W, 3) and a float32 alpha (H, W) in [0, 1] (the model's foreground
probability at frame resolution) and returns a new RGB uint8 frame. They are vectorised numpy / OpenCV so that the
preview and the server run them per frame in a few milliseconds on a laptop CPU; the preview, the server and the
benchmark look them up by name in ``EFFECTS``. No TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

Color = tuple[int, int, int]  # RGB, 0..255

FOREGROUND_THRESHOLD = 0.5  # a pixel counts as foreground in a binary mask from this probability

# Maximum background blur (strength 1) as a Gaussian sigma, in fractions of the frame's shorter side.
MAX_BLUR_SIGMA = 1 / 24
# The blur runs on a copy downscaled so that its sigma there is this many pixels: same look, a fraction of the cost.
SMALL_BLUR_SIGMA = 2.0


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """An RGB uint8 image (H, W, 3), else a ValueError naming ``name`` and what is wrong."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} must be an RGB image of shape (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0..255), got {frame.dtype}")
    return frame


def check_alpha(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha`` as float32 (H, W) in [0, 1] matching ``frame``, else a ValueError saying what does not fit."""
    check_frame(frame)
    if not isinstance(alpha, np.ndarray) or alpha.ndim != 2:
        raise ValueError(f"alpha must be a 2-D array (H, W), got {getattr(alpha, 'shape', type(alpha).__name__)}")
    if alpha.shape != frame.shape[:2]:
        raise ValueError(f"alpha of shape {alpha.shape} does not match the frame's size {frame.shape[:2]}")
    if not np.issubdtype(alpha.dtype, np.floating):
        raise ValueError(f"alpha must be a float array in [0, 1], got {alpha.dtype}")
    alpha = alpha.astype(np.float32, copy=False)
    low, high = float(alpha.min()), float(alpha.max())
    if not (low >= 0.0 and high <= 1.0):  # also catches NaN
        raise ValueError(f"alpha must lie in [0, 1], got values in [{low}, {high}]")
    return alpha


def _check_unit(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def _check_color(color: Color) -> np.ndarray:
    rgb = np.asarray(color)
    if rgb.shape != (3,) or not np.all((rgb >= 0) & (rgb <= 255)):
        raise ValueError(f"color must be 3 RGB values in 0..255, got {color!r}")
    return rgb.astype(np.float32)


def parse_color(text: str) -> Color:
    """``"#RRGGBB"``, ``"RRGGBB"`` or ``"R,G,B"`` -> an RGB tuple (command-line and HTTP form)."""
    value = text.strip()
    try:
        if "," in value:
            rgb = tuple(int(part) for part in value.split(","))
        else:
            digits = value.removeprefix("#")
            if len(digits) != 6:
                raise ValueError
            rgb = tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        raise ValueError(f"color {text!r}: expected #RRGGBB or R,G,B") from None
    _check_color(rgb)
    return rgb  # type: ignore[return-value]


def binary_mask(alpha: np.ndarray, threshold: float = FOREGROUND_THRESHOLD) -> np.ndarray:
    """The foreground as a grey uint8 image: 255 where ``alpha >= threshold``, else 0."""
    return np.where(alpha >= threshold, 255, 0).astype(np.uint8)


def composite(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``foreground * alpha + background * (1 - alpha)`` per pixel, rounded to uint8 (exact at alpha 0 and 1)."""
    return cv2.blendLinear(foreground, background, alpha, 1.0 - alpha)


def fit_cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` = (height, width), aspect kept, and crop the overflow at the centre."""
    check_frame(image, "background")
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    scale = max(height / image.shape[0], width / image.shape[1])
    scaled_w, scaled_h = max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (scaled_w, scaled_h), interpolation=interpolation)
    top, left = (scaled_h - height) // 2, (scaled_w - width) // 2
    return np.ascontiguousarray(scaled[top:top + height, left:left + width])


def gradient_background(size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A built-in background for ``replace_background`` when none is given: a soft teal-to-violet gradient (RGB)."""
    height, width = size
    t = (np.linspace(0, 1, width)[None, :] * 0.6 + np.linspace(0, 1, height)[:, None] * 0.4)[..., None]
    top, bottom = np.array([40, 140, 150], np.float32), np.array([90, 50, 130], np.float32)
    return np.rint(top * (1 - t) + bottom * t).astype(np.uint8)


def blur_background(frame: np.ndarray, alpha: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """The sharp person over a blurred copy of the frame ("portrait mode").

    ``strength`` in [0, 1] scales the blur up to a sigma of ``MAX_BLUR_SIGMA`` of the shorter side. The blur runs at
    reduced resolution (a wide Gaussian loses nothing by it) and weights pixels by ``1 - alpha``, so that the person's
    colours do not bleed into the blurred background as a halo around them.
    """
    alpha = check_alpha(frame, alpha)
    sigma = _check_unit(strength, "strength") * MAX_BLUR_SIGMA * min(frame.shape[:2])
    if sigma < 0.5:
        return frame.copy()
    height, width = frame.shape[:2]
    factor = max(1.0, sigma / SMALL_BLUR_SIGMA)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = cv2.resize(frame, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = 1.001 - cv2.resize(alpha, small_size, interpolation=cv2.INTER_AREA)  # never 0: no division by zero
    small_sigma = sigma / factor
    blurred = cv2.GaussianBlur(small * weight[..., None], (0, 0), small_sigma)
    blurred /= cv2.GaussianBlur(weight, (0, 0), small_sigma)[..., None]
    background = cv2.resize(np.clip(blurred, 0, 255).astype(np.uint8), (width, height),
                            interpolation=cv2.INTER_LINEAR)
    return composite(frame, background, alpha)


def replace_background(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The person over ``background`` (any size: scaled to cover the frame and centre-cropped)."""
    alpha = check_alpha(frame, alpha)
    return composite(frame, fit_cover(background, frame.shape[:2]), alpha)


def matte_view(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The alpha matte itself as a grey image (white = foreground), to judge edges and hair detail."""
    alpha = check_alpha(frame, alpha)
    grey = np.rint(alpha * 255.0).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _mask_box(alpha: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of the non-zero alpha: the colour effects only convert and blend inside it."""
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    return None if w == 0 else (slice(y, y + h), slice(x, x + w))


# ITU-R BT.601 luma weights: the Y of OpenCV's YCrCb and of its RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def recolor_hair(frame: np.ndarray, hair_alpha: np.ndarray, color: Color = (150, 40, 60),
                 strength: float = 0.8) -> np.ndarray:
    """Dye the hair ``color`` and keep its texture.

    The pixel's luminance (Y of YCrCb) is kept and its chroma (Cr, Cb) replaced by the target colour's, so strands,
    highlights and shadows stay. YCrCb -> RGB is affine, so with a constant chroma the dyed pixel is simply
    ``Y + (color - Y(color))`` per channel: one saturating ``cv2.transform`` instead of two colour conversions. The
    result is blended into the frame by ``hair_alpha * strength``.
    """
    alpha = check_alpha(frame, hair_alpha)
    rgb = _check_color(color)
    weight = alpha * _check_unit(strength, "strength")
    out = frame.copy()
    box = _mask_box(weight)
    if box is None:
        return out
    offset = rgb - float(_LUMA @ rgb)
    dye = np.hstack([np.tile(_LUMA, (3, 1)), offset[:, None]])  # rows: R, G, B = Y + offset
    dyed = cv2.transform(frame[box], dye)
    out[box] = composite(dyed, frame[box], np.ascontiguousarray(weight[box]))
    return out


# Blinn-Phong half vector between a light at the upper left, (-1, -1, 2) with y pointing down, and the viewer (0, 0, 1).
_GLOSS_HALF = np.array([-1.0, -1.0, 2.0]) / np.sqrt(6.0) + np.array([0.0, 0.0, 1.0])
_GLOSS_HALF = (_GLOSS_HALF / np.linalg.norm(_GLOSS_HALF)).astype(np.float32)
_GLOSS_SHININESS = 150  # Blinn-Phong exponent: a narrow band on the lit side, almost nothing on the flat middle


def _gloss_highlight(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """A specular highlight in [0, 1], treating the blurred nail mask as a height map lit from the upper left.

    The blurred alpha is a rounded bump per nail; lighting its normals Blinn-Phong-style gives a bright band on the
    side facing the light, which reads as lacquer whatever the nail's own lighting.
    """
    height = cv2.GaussianBlur(alpha, (0, 0), sigma)
    # Sobel is 8x the per-pixel slope and a blurred step's steepest slope is about 0.4 / sigma: scale it to ~1.
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * (sigma / 3.0)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * (sigma / 3.0)
    hx, hy, hz = _GLOSS_HALF
    n_dot_h = np.clip((hz - gx * hx - gy * hy) / np.sqrt(gx * gx + gy * gy + 1.0), 0.0, 1.0)
    return cv2.pow(n_dot_h, _GLOSS_SHININESS) * alpha


def paint_nails(frame: np.ndarray, nail_alpha: np.ndarray, color: Color = (200, 20, 60),
                gloss: float = 0.5) -> np.ndarray:
    """Nail polish: ``color`` shaded by the nail's own relative brightness, plus a gloss highlight.

    Polish is opaque, so unlike hair the colour's own lightness wins; the nail's luminance relative to its mean
    modulates it so that the curvature still shows. ``gloss`` in [0, 1] scales the specular highlight.
    """
    alpha = check_alpha(frame, nail_alpha)
    rgb = _check_color(color)
    gloss = _check_unit(gloss, "gloss")
    out = frame.copy()
    box = _mask_box(alpha)
    if box is None:
        return out
    region, weight = frame[box], np.ascontiguousarray(alpha[box])
    luma = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    mean_luma = max(float((luma * weight).sum() / weight.sum()), 1.0)
    painted = cv2.transform(region, np.outer(rgb / mean_luma, _LUMA))  # color * Y / mean Y
    if gloss > 0:
        sigma = max(1.0, min(frame.shape[:2]) / 160)
        highlight = gloss * _gloss_highlight(weight, sigma)
        painted = composite(np.full_like(painted, 255), painted, highlight)
    out[box] = composite(painted, region, weight)
    return out


@dataclass(frozen=True)
class Effect:
    """One entry of ``EFFECTS``: the function, the model tasks whose mask it uses, the options it takes."""

    apply: Callable[..., np.ndarray]  # apply(frame, alpha, **options) -> frame
    tasks: tuple[str, ...]  # tasks of the models (ModelCard.task) whose mask fits
    options: tuple[str, ...] = ()

    def __call__(self, frame: np.ndarray, alpha: np.ndarray, **options) -> np.ndarray:
        """Apply with the given options; options this effect does not take are ignored (callers share one set)."""
        return self.apply(frame, alpha, **{k: v for k, v in options.items() if k in self.options and v is not None})


EFFECTS: dict[str, Effect] = {
    "blur": Effect(blur_background, ("portrait", "matting"), ("strength",)),
    "replace": Effect(replace_background, ("portrait", "matting"), ("background",)),
    "matte": Effect(matte_view, ("portrait", "matting", "hair", "nails")),
    "hair-color": Effect(recolor_hair, ("hair",), ("color", "strength")),
    "nails": Effect(paint_nails, ("nails",), ("color", "gloss")),
}


def get_effect(name: str) -> Effect:
    try:
        return EFFECTS[name]
    except KeyError:
        raise ValueError(f"unknown effect {name!r}; expected one of {sorted(EFFECTS)}") from None


def check_model_task(effect: str, task: str, model: str | os.PathLike) -> None:
    """A ValueError naming ``model`` when the mask of a ``task`` model does not suit ``effect``."""
    tasks = get_effect(effect).tasks
    if task not in tasks:
        raise ValueError(f"{model}: a {task} model, but the {effect} effect needs a {' or '.join(tasks)} model; "
                         "choose another --model or --effect")
