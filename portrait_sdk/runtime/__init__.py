"""On-device-style inference on ai-edge-litert + numpy + OpenCV. Never imports TensorFlow."""

from portrait_sdk.runtime.refine import GuidedFilter
from portrait_sdk.runtime.segmenter import Segmenter, load_card
from portrait_sdk.runtime.temporal import Smoothing, ema_blend, uncertainty_blend

__all__ = ["GuidedFilter", "Segmenter", "Smoothing", "ema_blend", "load_card", "uncertainty_blend"]
