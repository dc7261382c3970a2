"""On-device-style inference on ai-edge-litert + numpy + OpenCV. Never imports TensorFlow."""

from portrait_sdk.runtime.segmenter import Preprocessing, Segmenter

__all__ = ["Preprocessing", "Segmenter"]
