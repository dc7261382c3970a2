"""The preview app (``portrait-sdk preview``) and the timed per-frame pipeline it shares with the
benchmark. No TensorFlow."""

from portrait_sdk.preview.pipeline import (STAGES, FrameResult, ImageSource, NoCameraError, Pipeline, StageStats,
                                           VideoSource)

__all__ = ["STAGES", "FrameResult", "ImageSource", "NoCameraError", "Pipeline", "StageStats", "VideoSource"]
