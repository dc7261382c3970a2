"""Run a segmentation ``.tflite`` file on frames: resize, normalise, infer, map the mask back to the frame.

This module imports no TensorFlow: phones and the preview run the same flatbuffer through LiteRT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input: ``(pixel / 255 - mean) / std`` per channel, in ``color_order``."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color_order: str = "RGB"  # order the model expects; frames are given as RGB
    resize: str = "stretch"  # "stretch" (MediaPipe) or "letterbox" (pad to the aspect ratio, grey border)

    def __post_init__(self):
        if self.resize not in ("stretch", "letterbox"):
            raise ValueError(f"resize must be 'stretch' or 'letterbox', got {self.resize!r}")
        if self.color_order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")


def _letterbox_box(frame_hw, model_hw):
    """Placement (top, left, height, width) of the frame, aspect kept, inside the model's input."""
    scale = min(model_hw[0] / frame_hw[0], model_hw[1] / frame_hw[1])
    h, w = max(1, round(frame_hw[0] * scale)), max(1, round(frame_hw[1] * scale))
    return (model_hw[0] - h) // 2, (model_hw[1] - w) // 2, h, w


class Segmenter:
    """A segmentation model on LiteRT (XNNPACK on the CPU).

    ``segment(frame)`` takes an RGB uint8 frame (H, W, 3) and returns the foreground probability (H, W) float32
    in [0, 1]. Models whose output has 2 channels are read as softmax (channel 1 = foreground), 1 channel as a
    sigmoid probability or logit (``output_is_logit``).
    """

    def __init__(self, model_path: str | os.PathLike, preprocessing: Preprocessing = Preprocessing(),
                 num_threads: int = 2, output_is_logit: bool = False):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        if path.read_bytes()[4:8] != b"TFL3":
            raise ValueError(f"{path}: not a TFLite flatbuffer (missing the TFL3 identifier)")
        self.path = path
        self.preprocessing = preprocessing
        self.output_is_logit = output_is_logit
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, self.input_height, self.input_width, self.input_channels = (int(v) for v in self._input["shape"])

    def _check_frame(self, frame) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an RGB image of shape (H, W, 3), got shape {frame.shape}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"frame is empty (shape {frame.shape})")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 (0..255), got {frame.dtype}")
        return frame

    def preprocess(self, frame: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Frame (H, W, 3) uint8 RGB -> model input (1, h, w, C) float32."""
        p = self.preprocessing
        model_hw = (self.input_height, self.input_width)
        if p.resize == "stretch":
            resized = cv2.resize(frame, (model_hw[1], model_hw[0]), interpolation=cv2.INTER_AREA)
        else:
            top, left, h, w = _letterbox_box(frame.shape[:2], model_hw)
            resized = np.full((*model_hw, 3), 128, np.uint8)
            resized[top:top + h, left:left + w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        if p.color_order == "BGR":
            resized = resized[..., ::-1]
        x = (resized.astype(np.float32) / 255.0 - np.float32(p.mean)) / np.float32(p.std)
        if self.input_channels == 4:
            prior = np.zeros(model_hw, np.float32) if prior is None else prior
            x = np.concatenate([x, prior[..., None].astype(np.float32)], axis=-1)
        return x[None]

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Model input -> foreground probability at model resolution (h, w)."""
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])[0].astype(np.float32)
        if out.shape[-1] >= 2:
            logits = out - out.max(axis=-1, keepdims=True)
            exp = np.exp(logits)
            return exp[..., 1] / exp.sum(axis=-1)
        prob = out[..., 0]
        return 1.0 / (1.0 + np.exp(-prob)) if self.output_is_logit else prob

    def postprocess(self, prob: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        """Model-resolution probability -> frame-resolution probability (undoing the letterbox)."""
        if self.preprocessing.resize == "letterbox":
            top, left, h, w = _letterbox_box(frame_hw, prob.shape)
            prob = prob[top:top + h, left:left + w]
        return cv2.resize(prob, (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_LINEAR)

    def segment(self, frame: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        frame = self._check_frame(frame)
        prob = self.infer(self.preprocess(frame, prior))
        return np.clip(self.postprocess(prob, frame.shape[:2]), 0.0, 1.0)
