"""The one preprocessing contract: how an image becomes a model's input (numpy + OpenCV, no TensorFlow).

Training-time validation (``data.pipeline``, through ``augment.resize_pair``), int8 calibration
(``export.representative_dataset``), ``portrait-sdk evaluate`` and the runtime (``runtime.Segmenter``) all call these
functions, so a model sees the same tensor for the same image at every stage; the Android and iOS demos
reimplement ``fit_box`` and are checked against vectors the runtime's tests write.

- ``fit_box``: where the image lands in the model's input. ``stretch`` fills it (aspect ratio ignored, as
  MediaPipe's segmenters are fed); ``letterbox`` keeps the aspect ratio, sizes rounded, centred with the spare
  rows / columns split floor-first, padded with grey 128 (PortraitNet's test-time input).
- ``fit``: area resampling into that box (OpenCV's ``INTER_AREA``: a box filter when shrinking), on a canvas of
  ``border``; labels use the same box with border 0.
- ``normalize``: ``(pixel - mean) / std`` per channel from the card's input spec, RGB or BGR, and the 4th channel
  (the previous frame's mask, zeros on a first frame).
"""

from __future__ import annotations

import cv2
import numpy as np

GREY = 128  # letterbox padding, in 0..255 pixels before normalisation
RESIZES = ("letterbox", "stretch")


def fit_box(image_hw: tuple[int, int], model_hw: tuple[int, int], resize: str) -> tuple[int, int, int, int]:
    """Placement (top, left, height, width) of an ``image_hw`` image inside a ``model_hw`` input."""
    if resize == "stretch":
        return 0, 0, *model_hw
    if resize != "letterbox":
        raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
    scale = min(model_hw[0] / image_hw[0], model_hw[1] / image_hw[1])
    h = min(model_hw[0], max(1, round(image_hw[0] * scale)))
    w = min(model_hw[1], max(1, round(image_hw[1] * scale)))
    return (model_hw[0] - h) // 2, (model_hw[1] - w) // 2, h, w


def fit(array: np.ndarray, model_hw: tuple[int, int], resize: str, border: float = GREY) -> np.ndarray:
    """An image (H, W, C) or label (H, W) resampled into its ``fit_box`` on a ``border``-valued canvas."""
    top, left, h, w = fit_box(array.shape[:2], model_hw, resize)
    resized = cv2.resize(array, (w, h), interpolation=cv2.INTER_AREA)
    if (h, w) == tuple(model_hw):
        return resized
    canvas = np.full((*model_hw, *array.shape[2:]), border, array.dtype)
    canvas[top:top + h, left:left + w] = resized
    return canvas


def fit_pair(image: np.ndarray, label: np.ndarray, model_hw: tuple[int, int],
             resize: str) -> tuple[np.ndarray, np.ndarray]:
    """An (image uint8, label float32 in [0, 1]) pair fitted alike: the image on grey, the label on 0."""
    return fit(image, model_hw, resize), np.clip(fit(label.astype(np.float32), model_hw, resize, 0.0), 0.0, 1.0)


def normalize(fitted: np.ndarray, spec, prior: np.ndarray | None = None) -> np.ndarray:
    """A fitted RGB uint8 image -> the model's (1, H, W, C) float32 input, as ``spec`` (a card's ``InputSpec``)
    says: colour order, ``(pixel - mean) / std``, and for 4-channel models ``prior`` (zeros when None)."""
    if spec.color_order == "BGR":
        fitted = cv2.cvtColor(fitted, cv2.COLOR_RGB2BGR)
    # OpenCV's per-channel scalar arithmetic: numpy's broadcasting over a length-3 axis is ~20x slower here
    x = fitted.astype(np.float32)
    cv2.multiply(x, tuple(1.0 / s for s in spec.std) + (0.0,), dst=x)
    cv2.add(x, tuple(-m / s for m, s in zip(spec.mean, spec.std)) + (0.0,), dst=x)
    if spec.channels == 4:
        hw = fitted.shape[:2]
        x = cv2.merge([*cv2.split(x), np.zeros(hw, np.float32) if prior is None else prior.astype(np.float32)])
    return x[None]


def model_input(image: np.ndarray, spec, prior: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 image of any size -> the model's (1, H, W, C) float32 input (``fit`` then ``normalize``)."""
    return normalize(fit(image, (spec.height, spec.width), spec.resize), spec, prior)
