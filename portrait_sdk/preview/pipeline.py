"""The per-frame pipeline shared by the preview app and the benchmark: decode, pre-process, inference,
post-process, effect, each stage timed so that a slow frame can be blamed on the right step.

Sources hand out BGR frames as OpenCV decodes them; the pipeline converts to RGB (the segmenter's and the effects'
order) and returns RGB. No TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from portrait_sdk.effects import fit_cover, get_effect
from portrait_sdk.files import IMAGE_EXTENSIONS, atomic_write, replacing
from portrait_sdk.runtime import Segmenter

STAGES = ("decode", "pre-process", "inference", "post-process", "effect")
IMAGE_SUFFIXES = IMAGE_EXTENSIONS
CAMERA_REOPEN_TRIES = 3  # a camera that stops delivering frames is reopened this often before the stream ends
CAMERA_REOPEN_WAIT_S = 0.5
FILE_SKIP_TRIES = 25  # unreadable frames of a file skipped in a row before the stream ends early


class NoCameraError(RuntimeError):
    """The camera cannot be opened or delivers no frames."""


class Source(Protocol):
    name: str
    still: bool  # one photo (segmented statelessly) rather than a video stream
    fps: float

    def read(self) -> np.ndarray | None:
        """The next BGR uint8 frame, or None at the end."""

    def close(self) -> None: ...

    @property
    def problem(self) -> str | None:
        """Why the stream ended early or had gaps (a truncated file, a camera unplugged), or None."""


class VideoSource:
    """Frames of a camera or a video file through ``cv2.VideoCapture``.

    Faults end the stream with a ``problem`` instead of an exception, so the frames done so far are kept: a camera
    that stops delivering frames (unplugged) is reopened up to CAMERA_REOPEN_TRIES times; a file's unreadable frames
    are skipped (up to FILE_SKIP_TRIES in a row), and a file that ends before its declared frame count is reported.
    """

    still = False

    def __init__(self, capture: cv2.VideoCapture, name: str, camera: int | None = None):
        self._capture, self.name, self._camera = capture, name, camera
        self._first: np.ndarray | None = None  # a camera's frame read while checking that it works
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0  # cameras often report 0
        self._declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if camera is None else 0
        self.frames, self.skipped, self.reopened = 0, 0, 0
        self._ended: str | None = None

    @classmethod
    def camera(cls, index: int = 0) -> "VideoSource":
        hint = ("pass --camera N for another camera, or run on a file with --video FILE or --image FILE "
                "(add --headless --output out.mp4 where there is no display)")
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            raise NoCameraError(f"no camera at index {index} (OpenCV cannot open it): {hint}")
        source = cls(capture, f"camera {index}", camera=index)
        first = source.read()
        if first is None:
            capture.release()
            raise NoCameraError(f"camera {index} opened but delivers no frames: {hint}")
        source._first = first
        return source

    @classmethod
    def file(cls, path: str | os.PathLike) -> "VideoSource":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such video file")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"{path}: OpenCV cannot decode this video")
        return cls(capture, path.name)

    def read(self) -> np.ndarray | None:
        if self._first is not None:  # counted when it was read
            frame, self._first = self._first, None
            return frame
        frame = self._next()
        self.frames += frame is not None
        return frame

    def _next(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        if ok:
            return frame
        if self._camera is not None:
            return self._reopen()
        misses = 1
        while misses <= FILE_SKIP_TRIES and self.frames + self.skipped + misses < self._declared:
            ok, frame = self._capture.read()
            if ok:
                self.skipped += misses
                return frame
            misses += 1
        if self.frames + self.skipped < self._declared:
            self._ended = (f"{self.name}: the video ended after {self.frames} of its {self._declared} frames "
                           "(truncated or corrupt file?)")
        return None

    def _reopen(self) -> np.ndarray | None:
        """The camera stopped delivering frames: open it again (it may come back), else end with a problem."""
        for _ in range(CAMERA_REOPEN_TRIES):
            self._capture.release()
            time.sleep(CAMERA_REOPEN_WAIT_S)
            self._capture = cv2.VideoCapture(self._camera)
            ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
            if ok:
                self.reopened += 1
                return frame
        self._ended = (f"{self.name} stopped delivering frames after {self.frames} frame(s) and did not come back "
                       f"after {CAMERA_REOPEN_TRIES} tries to reopen it (unplugged or taken by another program?)")
        return None

    @property
    def problem(self) -> str | None:
        notes = [self._ended] if self._ended else []
        if self.skipped and not self._ended:
            notes.append(f"{self.name}: skipped {self.skipped} unreadable frame(s)")
        if self.reopened:
            notes.append(f"{self.name}: reopened {self.reopened} time(s) after it stopped delivering frames")
        return "; ".join(notes) or None

    def close(self) -> None:
        self._capture.release()


class ImageSource:
    """One photo: read once (headless), or again and again (a live window, so that keys keep working)."""

    still = True
    fps = 30.0

    def __init__(self, path: str | os.PathLike, repeat: bool = False):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such image file")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: OpenCV cannot decode this image")
        self._image, self.name, self._repeat, self._done = image, path.name, repeat, False

    def read(self) -> np.ndarray | None:
        if self._done:
            return None
        self._done = not self._repeat
        return self._image.copy()

    def close(self) -> None:
        self._done = True

    problem = None


@dataclass
class FrameResult:
    frame: np.ndarray  # the input, RGB uint8
    alpha: np.ndarray  # the mask, float32 (H, W) in [0, 1]
    output: np.ndarray  # the effect's output, RGB uint8
    times_ms: dict[str, float]  # per stage of STAGES


@dataclass
class Pipeline:
    """One frame through decode -> pre-process -> inference -> post-process -> effect.

    ``segmenter`` is a ``portrait_sdk.runtime.Segmenter`` (``segment`` for stills, ``process`` for video). Its own
    pre-process / post-process split comes from its ``timings_ms`` when it reports one; otherwise its whole call
    counts as inference. ``options`` go to the effect (strength, color, gloss, background).
    """

    segmenter: Segmenter
    effect: str = "blur"
    options: dict = field(default_factory=dict)
    _fitted: tuple | None = field(default=None, repr=False)  # (background, frame shape, fitted background)

    def __post_init__(self):
        get_effect(self.effect)

    def step(self, source: Source) -> FrameResult | None:
        """Decode the source's next frame and run it through every stage; None at the end of the source."""
        t0 = time.perf_counter()
        bgr = source.read()
        if bgr is None:
            return None
        t1 = time.perf_counter()
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        t2 = time.perf_counter()
        alpha = self.segmenter.segment(frame) if source.still else self.segmenter.process(frame)
        t3 = time.perf_counter()
        output = get_effect(self.effect)(frame, alpha, **self._effect_options(frame.shape[:2]))
        t4 = time.perf_counter()
        inner = getattr(self.segmenter, "timings_ms", None) or {}
        pre, post = inner.get("preprocess", 0.0), inner.get("postprocess", 0.0)
        times = {"decode": (t1 - t0) * 1e3, "pre-process": (t2 - t1) * 1e3 + pre,
                 "inference": (t3 - t2) * 1e3 - pre - post, "post-process": post, "effect": (t4 - t3) * 1e3}
        return FrameResult(frame, alpha, output, times)

    def _effect_options(self, frame_hw: tuple[int, int]) -> dict:
        """The options, with the background fitted to the frame once rather than on every frame."""
        background = self.options.get("background")
        if background is None:
            return self.options
        if self._fitted is None or self._fitted[0] is not background or self._fitted[1] != frame_hw:
            self._fitted = (background, frame_hw, fit_cover(background, frame_hw))
        return {**self.options, "background": self._fitted[2]}


class StageStats:
    """Per-stage times of many frames: all of them (benchmark) or the last ``window`` (live display)."""

    def __init__(self, window: int | None = None):
        self._times = {stage: deque(maxlen=window) for stage in STAGES}

    def add(self, times_ms: dict[str, float]) -> None:
        for stage in STAGES:
            self._times[stage].append(times_ms[stage])

    @property
    def frames(self) -> int:
        return len(self._times[STAGES[0]])

    def mean_ms(self) -> dict[str, float]:
        return {stage: float(np.mean(v)) if v else 0.0 for stage, v in self._times.items()}

    def fps(self) -> float:
        """Frames per second if the stages ran back to back: 1000 / mean total ms."""
        total = sum(self.mean_ms().values())
        return 1000.0 / total if total > 0 else 0.0


def format_stages(stages_ms: dict[str, float]) -> str:
    return "  ".join(f"{stage} {ms:.1f}" for stage, ms in stages_ms.items()) + " ms"


def image_files(path: Path, what: str = "image") -> list[Path]:
    """``path`` if it is a file, else the folder's images (by suffix, sorted by name, hidden files skipped)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir()
                      if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"{path}: no such {what} or folder")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a FileNotFoundError / ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot decode this image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save an RGB (or grey) uint8 image atomically (encoded in memory, written to a temp file renamed over
    ``path``)."""
    path = Path(path)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image)
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot write images of type {path.suffix!r}")
    atomic_write(path, lambda temp: temp.write_bytes(data.tobytes()))


class VideoWriter:
    """An mp4 (or avi) written to a temp file and renamed over the target when closed, so that a crash never leaves
    a truncated file under the final name."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self._file = contextlib.ExitStack()  # ``replacing(path)`` from the first frame to ``close``
        self._fps, self._writer = fps, None
        self.size: tuple[int, int] | None = None  # (width, height), from the first frame
        self.resized = 0  # frames of another size, resized to ``size`` (a video file has one frame size)

    def write(self, rgb: np.ndarray) -> None:
        if self.size is not None and (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
            self.resized += 1
        if self._writer is None:
            self.size = (rgb.shape[1], rgb.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            (temp,) = self._file.enter_context(replacing(self.path, keep_suffix=True))
            self._writer = cv2.VideoWriter(str(temp), fourcc, self._fps, (rgb.shape[1], rgb.shape[0]))
            if not self._writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot write a video here")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the file and give it its final name."""
        self.__exit__(None, None, None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._file.__exit__(error_type, error, traceback)  # renamed into place, or removed after a failure
