"""Run a segmentation ``.tflite`` file on frames: fit to the model, normalise, infer, map the mask back to the frame.

The model card (``<name>.json`` beside ``<name>.tflite``) says how: input size and channels, resize mode,
colour order, normalisation and output semantics. ``segment`` handles single images; ``process`` handles video
(temporal smoothing, and the previous mask fed back as input channel 4 for 4-channel models). Optional guided-filter
refinement snaps the mask to the frame's edges. This module imports no TensorFlow: phones and the preview run the
same flatbuffer through LiteRT (XNNPACK on the CPU).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk import preprocess
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path
from portrait_sdk.quiet import native_info_dropped
from portrait_sdk.runtime.refine import GuidedFilter
from portrait_sdk.runtime.temporal import Smoothing

PROBABILITY_SLACK = 1e-3  # how far outside [0, 1] an in-graph softmax / sigmoid may stray from rounding


def load_card(model_path: str | os.PathLike) -> ModelCard:
    """The model's card: ``<name>.json`` beside it, else the card or the TFLite Model Metadata inside the file.

    Without either, the input size, normalisation and output are unknown. A file with MediaPipe-style metadata
    only (e.g. MediaPipe's selfie model) is read as MediaPipe Tasks reads it: stretched input, the metadata's
    normalisation, a sigmoid output for one channel and softmax (channel 1) otherwise.
    """
    model_path = Path(model_path)
    card_file = card_path(model_path)
    if card_file.is_file():
        return ModelCard.load(card_file)
    metadata = _metadata(model_path)
    if metadata is None:
        raise FileNotFoundError(
            f"{model_path}: no model card ({card_file.name} beside it) and no TFLite metadata, so its input size, "
            "normalisation and output kind are unknown; export the model with `portrait-sdk export`, which writes "
            f"the card and the metadata, or write {card_file.name} with portrait_sdk.model_card.ModelCard.save")
    if metadata.get("card"):
        return ModelCard.from_dict(metadata["card"], f"{model_path} (card in its metadata)")
    return _card_from_metadata(model_path, metadata)


def _metadata(model_path: Path) -> dict | None:
    _check_model_file(model_path)
    try:
        from portrait_sdk.metadata import read_metadata

        return read_metadata(model_path)
    except (ImportError, FileNotFoundError, ValueError):  # no schema classes installed, or no metadata
        return None


def _card_from_metadata(model_path: Path, metadata: dict) -> ModelCard:
    from ai_edge_litert.interpreter import Interpreter

    with native_info_dropped():
        interpreter = Interpreter(model_path=str(model_path))
    _, height, width, channels = (int(v) for v in interpreter.get_input_details()[0]["shape"])
    out_channels = int(interpreter.get_output_details()[0]["shape"][-1])
    normalization = metadata.get("input") or {}
    mean = tuple(normalization.get("mean") or (0.0,))
    std = tuple(normalization.get("std") or (255.0,))
    labels = tuple(metadata.get("labels") or ())
    if out_channels == 1:
        output = OutputSpec(kind="sigmoid", labels=labels[:1] or ("foreground",), foreground_channel=0)
    else:
        output = OutputSpec(kind="softmax", labels=labels or tuple(f"class_{i}" for i in range(out_channels)))
    return ModelCard(
        name=model_path.stem, architecture=metadata.get("name") or "unknown", task="portrait", precision="unknown",
        input=InputSpec(height, width, channels, mean=(mean * 3)[:3] if len(mean) == 1 else mean[:3],
                        std=(std * 3)[:3] if len(std) == 1 else std[:3], resize="stretch"),
        output=output, description=metadata.get("description") or "")


def _check_model_file(path: Path) -> None:
    """Fail early, naming the file, on a missing file or one that is not a TFLite flatbuffer."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    with path.open("rb") as file:
        if file.read(8)[4:8] != b"TFL3":
            raise ValueError(f"{path}: not a TFLite model (missing the TFL3 file identifier)")


class Segmenter:
    """A segmentation model on LiteRT, configured by its model card.

    Frames are RGB uint8 arrays (H, W, 3) of any size (OpenCV users convert with ``cv2.cvtColor(frame,
    cv2.COLOR_BGR2RGB)``); float frames are rejected rather than guessed at (0..1 or 0..255?): convert with
    ``(frame * 255).round().astype(np.uint8)``. Masks are foreground probabilities (H, W) float32 in [0, 1].
    ``timings_ms`` holds the last call's pre-process, inference and post-process (smoothing and refinement
    included) times.
    """

    def __init__(self, model_path: str | os.PathLike, card: ModelCard, num_threads: int = 2,
                 refine: GuidedFilter | bool | None = None, smoothing: str | Smoothing | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(model_path)
        _check_model_file(path)
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
        card.check(f"model card of {path}")
        self.path, self.card = path, card
        self.refine = GuidedFilter() if refine is True else (refine or None)
        self.smoothing = Smoothing.of(smoothing)
        try:
            with native_info_dropped():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{path}: LiteRT cannot load this model ({error})") from None
        self._input, self._output = self._check_tensors()
        spec = card.input
        self.model_hw = (spec.height, spec.width)
        self._prev: np.ndarray | None = None  # previous output mask, model resolution and geometry
        self._prev_frame_hw: tuple[int, int] | None = None
        self.timings_ms: dict[str, float] = {}

    @classmethod
    def from_file(cls, model_path: str | os.PathLike, num_threads: int = 2,
                  refine: GuidedFilter | bool | None = None,
                  smoothing: str | Smoothing | None = None) -> "Segmenter":
        """Open ``model_path`` and configure it from its card; see ``load_card``.

        ``refine``: a ``GuidedFilter`` (or True for the defaults) to snap masks to image edges.
        ``smoothing``: "uncertainty", "ema", "none"/None or a ``Smoothing``; used by ``process`` only.
        """
        path = Path(model_path)
        _check_model_file(path)
        return cls(path, load_card(path), num_threads=num_threads, refine=refine, smoothing=smoothing)

    def _check_tensors(self) -> tuple[dict, dict]:
        """The input and output tensors, checked against the card so that bad pairs fail here, not per frame."""
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        spec, out_spec = self.card.input, self.card.output
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one input tensor, found {len(inputs)}")
        shape, wanted = tuple(int(v) for v in inputs[0]["shape"]), (1, spec.height, spec.width, spec.channels)
        if shape != wanted:
            raise ValueError(f"{self.path}: input tensor has shape {shape} but the model card says {wanted}")
        if inputs[0]["dtype"] != np.float32 or outputs[0]["dtype"] != np.float32:
            raise ValueError(f"{self.path}: only float32 input and output tensors are supported, got "
                             f"{inputs[0]['dtype'].__name__} -> {outputs[0]['dtype'].__name__}")
        out_shape = tuple(int(v) for v in outputs[0]["shape"])
        if len(out_shape) != 4:
            raise ValueError(f"{self.path}: output tensor must be (1, H, W, C), got {out_shape}")
        if out_spec.kind == "softmax" and out_shape[3] < 2:
            raise ValueError(f"{self.path}: the card says softmax but the output has {out_shape[3]} channel")
        if out_shape[3] > 1 and out_spec.foreground_channel >= out_shape[3]:
            raise ValueError(f"{self.path}: foreground_channel {out_spec.foreground_channel} is out of the "
                             f"output's {out_shape[3]} channels")
        return inputs[0], outputs[0]

    def _check_frame(self, frame) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an RGB image of shape (H, W, 3), got shape {frame.shape}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"frame is empty (shape {frame.shape})")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 RGB (0..255), got {frame.dtype}; convert float frames in 0..1 "
                             "with (frame * 255).round().astype(np.uint8)")
        return np.ascontiguousarray(frame)

    def _box(self, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """Where the frame lands in the model's input (``preprocess.fit_box``)."""
        return preprocess.fit_box(frame_hw, self.model_hw, self.card.input.resize)

    def preprocess(self, frame: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Checked RGB uint8 frame -> model input (1, h, w, C) float32; ``prior`` (h, w) is channel 4, else 0
        (``portrait_sdk.preprocess.model_input``, the contract training and calibration follow too)."""
        return preprocess.model_input(frame, self.card.input, prior)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Model input -> foreground probability (h, w) at the model's input resolution and geometry."""
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])[0]
        prob = out[..., self.card.output.foreground_channel if out.shape[-1] > 1 else 0]
        low, high = float(prob.min()), float(prob.max())
        if low < -PROBABILITY_SLACK or high > 1 + PROBABILITY_SLACK:
            raise ValueError(f"{self.path}: output values span [{low:.3g}, {high:.3g}], not probabilities; the "
                             f"card's output.kind {self.card.output.kind!r} means the activation is inside the "
                             "graph (re-export with `portrait-sdk export`)")
        if prob.shape != self.model_hw:
            prob = cv2.resize(prob, self.model_hw[::-1], interpolation=cv2.INTER_LINEAR)
        return np.clip(prob, 0.0, 1.0)

    def postprocess(self, prob: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Model-resolution probability -> frame-resolution mask: undo the letterbox, resize or refine."""
        top, left, h, w = self._box(frame.shape[:2])
        prob = prob[top:top + h, left:left + w]
        if self.refine is not None:
            return self.refine(frame, prob)
        return cv2.resize(prob, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)

    def segment(self, frame: np.ndarray) -> np.ndarray:
        """One image, no state: the prior channel (4-channel models) is zeros and no smoothing is applied."""
        return self._run(frame, stateful=False)

    def process(self, frame: np.ndarray) -> np.ndarray:
        """The next frame of a video: smooths with the previous mask and feeds it back to 4-channel models.

        A frame of another size than the previous one starts a new stream (as ``reset``).
        """
        return self._run(frame, stateful=True)

    def reset(self) -> None:
        """Forget the previous frame (a new video, a scene cut): the next ``process`` starts from a zero prior."""
        self._prev, self._prev_frame_hw = None, None

    def _run(self, frame, stateful: bool) -> np.ndarray:
        t0 = time.perf_counter()
        frame = self._check_frame(frame)
        if stateful and self._prev_frame_hw != frame.shape[:2]:
            self.reset()
        prev = self._prev if stateful else None
        x = self.preprocess(frame, prev)
        t1 = time.perf_counter()
        prob = self.infer(x)
        t2 = time.perf_counter()
        if stateful:
            prob = self.smoothing(prob, prev)
            self._prev, self._prev_frame_hw = prob, frame.shape[:2]
        mask = self.postprocess(prob, frame)
        t3 = time.perf_counter()
        self.timings_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                           "postprocess": (t3 - t2) * 1e3}
        return mask
