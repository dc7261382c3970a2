"""Temporal smoothing of masks across video frames: the hair paper's uncertainty blend, an EMA, or none.

Per-frame masks flicker where the model is unsure (borders, hair). Both blends mix the new probability ``p`` with
the previous output mask; they run at model resolution, before the mask is mapped back to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SMOOTHING_MODES = ("none", "uncertainty", "ema")


def uncertainty_blend(p: np.ndarray, prev: np.ndarray, ratio: float = 0.9, eps: float = 1e-3) -> np.ndarray:
    """MediaPipe's hair-segmentation blend (``TfLiteTensorsToSegmentationCalculator``; MODELS.md section 4).

    ``u = 1 - H2(p)`` (binary entropy in bits, ``eps`` inside the logs), clamped to [0, 1], then
    ``u <- 1 - (1 - u)^2``; ``m = u * p + (1 - u) * prev``; output ``ratio * m + (1 - ratio) * p``.
    Confident pixels follow the new frame, uncertain ones keep the previous mask.
    """
    entropy = -(p * np.log(p + eps) + (1.0 - p) * np.log(1.0 - p + eps)) / math.log(2.0)
    u = np.clip(1.0 - entropy, 0.0, 1.0)
    u = u * (2.0 - u)  # = 1 - (1 - u)^2
    mixed = u * p + (1.0 - u) * prev
    return (ratio * mixed + (1.0 - ratio) * p).astype(np.float32, copy=False)


def ema_blend(p: np.ndarray, prev: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average: ``alpha * p + (1 - alpha) * prev`` (``alpha`` = 1 means no smoothing)."""
    return (alpha * p + (1.0 - alpha) * prev).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Smoothing:
    """Which blend ``Segmenter.process`` applies: ``mode`` in ``SMOOTHING_MODES``; ``alpha`` is the EMA weight of
    the new frame, ``ratio`` the uncertainty blend's ``combine_with_previous_ratio``."""

    mode: str = "none"
    alpha: float = 0.5
    ratio: float = 0.9

    def __post_init__(self):
        if self.mode not in SMOOTHING_MODES:
            raise ValueError(f"smoothing mode must be one of {SMOOTHING_MODES}, got {self.mode!r}")
        if not (0.0 < self.alpha <= 1.0 and 0.0 <= self.ratio <= 1.0):
            raise ValueError(f"smoothing needs 0 < alpha <= 1 and 0 <= ratio <= 1, got {self}")

    @classmethod
    def of(cls, value: "str | Smoothing | None") -> "Smoothing":
        """Accept a mode name, ``None`` (no smoothing) or a ``Smoothing``."""
        if isinstance(value, Smoothing):
            return value
        return cls("none" if value is None else value)

    def __call__(self, p: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        """Blend the new probability with the previous output mask (``None`` on the first frame: ``p`` as is)."""
        if prev is None or self.mode == "none":
            return p
        if self.mode == "ema":
            return ema_blend(p, prev, self.alpha)
        return uncertainty_blend(p, prev, self.ratio)
