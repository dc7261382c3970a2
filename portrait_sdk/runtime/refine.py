"""Edge-aware mask refinement: the fast guided filter (He, Sun & Tang 2010; He & Sun 2015), numpy + OpenCV.

A model's mask comes from a 224-512 px grid, so upsampled to the frame it has soft, blocky borders. The guided
filter fits, in every window, the mask as a linear function of the frame's grey image (``q = a * I + b``): where the
image is flat the mask is averaged (noise goes away), where the image has an edge the mask follows that edge. The
coefficients ``a, b`` vary slowly, so they are computed on a reduced grid and only upsampled to the frame ("fast
guided filter"), which keeps the cost to a few full-resolution multiply-adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class GuidedFilter:
    """Guided-filter options.

    ``radius``: window radius in frame pixels (the window is ``2 * radius + 1`` wide); how far a border may move.
    ``eps``: regularisation on the [0, 1] grey guide; image edges with a local std well above ``sqrt(eps)`` are
    followed, weaker texture is smoothed over. ``subsample``: the reduced grid is the frame divided by this.
    """

    radius: int = 8
    eps: float = 1e-3
    subsample: int = 4

    def __post_init__(self):
        if self.radius < 1 or self.subsample < 1 or self.eps <= 0:
            raise ValueError(f"GuidedFilter needs radius >= 1, subsample >= 1 and eps > 0, got {self}")

    def __call__(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine ``mask`` (any resolution, covering the whole frame) guided by the RGB uint8 ``frame`` (H, W, 3).

        Returns the refined mask at the frame's resolution, float32 in [0, 1].
        """
        height, width = frame.shape[:2]
        guide = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        guide *= np.float32(1 / 255)
        small = (max(1, width // self.subsample), max(1, height // self.subsample))
        guide_small = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
        mask_small = cv2.resize(mask.astype(np.float32, copy=False), small, interpolation=cv2.INTER_LINEAR)
        a, b = self._coefficients(guide_small, mask_small, max(1, round(self.radius / self.subsample)))
        # q = a * I + b at full resolution, in place: each full-size temporary costs as much as the arithmetic
        q = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
        q *= guide
        q += cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(q, 0.0, 1.0, out=q)

    def _coefficients(self, guide: np.ndarray, mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """The window-averaged linear coefficients ``a, b`` of the guided filter on one grid."""
        def box(x: np.ndarray) -> np.ndarray:
            return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

        mean_i, mean_p = box(guide), box(mask)
        var_i = box(guide * guide) - mean_i * mean_i
        cov_ip = box(guide * mask) - mean_i * mean_p
        a = cov_ip / (var_i + np.float32(self.eps))
        b = mean_p - a * mean_i
        return box(a), box(b)
