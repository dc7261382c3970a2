"""Faulty video sources for the preview (``portrait-sdk preview ... --headless``): video files truncated
at random offsets, with random bytes written over their middle, empty or not a video at all; a camera that stops
delivering frames mid-stream (for good, or coming back when reopened); a camera whose frame size changes.

Each case runs the preview's ``main`` in a child process (:mod:`portrait_sdk.reliability.isolate`); cameras are
played by a fake ``cv2.VideoCapture``. Outcomes that pass: ``error`` (exit 2, the message naming the file or the
camera), ``kept running`` (exit 0, every frame that could be read written, and a warning saying what happened),
``read`` (exit 0, the whole clip). Failures: ``silent`` (frames lost or resized without a word), ``wrong``,
``unexpected`` (an exception escaped), ``crash``, ``hang``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.reliability.fuzz import FuzzResult
from portrait_sdk.reliability.isolate import run_isolated

FRAMES, SIZE = 24, (48, 64)
FILE_KINDS = ("truncated mp4", "truncated avi", "random bytes over an avi's middle", "random bytes over an mp4's middle",
              "empty video file", "not a video")
CAMERA_KINDS = ("camera unplugged mid-stream", "camera back after a reopen", "camera changing frame size")


def clip_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A BGR frame: a red square moving right over a blue background."""
    frame = np.zeros((*size, 3), np.uint8)
    frame[...] = (200, 40, 30)
    x = 4 + (2 * index) % max(1, size[1] - 24)
    frame[size[0] // 4:size[0] // 4 + size[0] // 2, x:x + 20] = (40, 60, 220)
    return frame


def write_clip(path: Path, frames: int = FRAMES) -> Path:
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, 10.0, (SIZE[1], SIZE[0]))
    for i in range(frames):
        writer.write(clip_frame(i))
    writer.release()
    return path


def stream_cases(n: int, seed: int, folder: Path, model: Path) -> list[dict]:
    """``n`` cases (the kinds in turn); damaged files are written under ``folder``."""
    rng = np.random.default_rng(seed)
    kinds = FILE_KINDS + CAMERA_KINDS
    specs = []
    for index in range(n):
        kind = kinds[index % len(kinds)]
        case = folder / f"{index:04d}"
        case.mkdir(parents=True)
        spec = {"name": f"{kind} #{index}", "kind": kind, "model": str(model), "output": str(case / "out.mp4")}
        if kind in FILE_KINDS:
            suffix = ".mp4" if "mp4" in kind else ".avi"
            data = write_clip(case / f"clip{suffix}").read_bytes()
            if kind.startswith("truncated"):
                data = data[:int(rng.integers(1, len(data)))]
            elif kind.startswith("random bytes"):
                start = int(rng.integers(len(data) // 4, len(data) // 2))
                data = data[:start] + rng.bytes(int(rng.integers(16, len(data) // 4))) + data[start + len(data) // 4:]
            elif kind == "empty video file":
                data = b""
            else:
                data = rng.bytes(int(rng.integers(1, 5000)))
            video = case / f"damaged{suffix}"
            video.write_bytes(data)
            spec["video"] = str(video)
        else:
            spec["fail_after"] = int(rng.integers(1, FRAMES - 2))
        specs.append(spec)
    return specs


class FakeCamera:
    """Plays ``cv2.VideoCapture(index)`` in the camera cases: FRAMES frames of ``clip_frame`` in all, counted over
    every capture opened. "unplugged": the first capture fails after ``fail_after`` frames and the camera cannot be
    opened again; "back after a reopen": the first capture fails there and the next one carries on; "changing
    frame size": the size changes every ``fail_after`` frames."""

    delivered = 0  # frames delivered by all the captures of this process

    def __init__(self, kind: str, fail_after: int):
        self.kind, self.fail_after = kind, fail_after
        self.first = FakeCamera.delivered < fail_after  # the capture that breaks down mid-stream

    def isOpened(self) -> bool:  # noqa: N802 -- OpenCV's name
        return self.first or self.kind != "camera unplugged mid-stream"

    def read(self):
        done = FakeCamera.delivered
        breaks = self.kind != "camera changing frame size" and self.first and done >= self.fail_after
        if done >= FRAMES or breaks or not self.isOpened():
            return False, None
        FakeCamera.delivered += 1
        if self.kind == "camera changing frame size":
            return True, clip_frame(done, ((48, 64), (60, 80), (36, 36))[(done // self.fail_after) % 3])
        return True, clip_frame(done)

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


def check_stream_case(spec: dict) -> dict:
    """Run the preview headless on the case; see the module docstring."""
    from portrait_sdk.cli import main
    from portrait_sdk.preview import pipeline

    kind, out = spec["kind"], Path(spec["output"])
    source = ["--video", spec["video"]] if "video" in spec else ["--camera", "0"]
    real_capture, FakeCamera.delivered = cv2.VideoCapture, 0
    if "video" not in spec:
        pipeline.cv2.VideoCapture = lambda index: FakeCamera(kind, spec["fail_after"])
        pipeline.CAMERA_REOPEN_WAIT_S = 0.0
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            code = main(["preview", *source, "--model", spec["model"], "--headless", "--output", str(out),
                         "--no-refine"])
    except BaseException as error:  # noqa: BLE001 -- anything escaping main is the finding
        return {"outcome": "unexpected", "detail": f"{type(error).__name__}: {error}"}
    finally:
        pipeline.cv2.VideoCapture = real_capture
    message = stderr.getvalue().strip()
    named = Path(spec["video"]).name if "video" in spec else "camera 0"
    if code == 2:
        ok = "error:" in message and named in message
        return {"outcome": "error" if ok else "unnamed", "detail": message[-300:]}
    if code != 0:
        return {"outcome": "unexpected", "detail": f"exit code {code}: {message[-300:]}"}
    written, sizes = _frames(out)
    warned = "warning:" in message
    if len(sizes) > 1:
        return {"outcome": "wrong", "detail": f"the output video has frames of sizes {sorted(sizes)}"}
    wanted = {"camera unplugged mid-stream": spec.get("fail_after"), "camera back after a reopen": FRAMES}.get(kind)
    if wanted is not None and written != wanted:
        return {"outcome": "wrong", "detail": f"{written} frames written, the camera delivered {wanted}"}
    if kind == "camera changing frame size":
        ok = written == FRAMES and "resized" in message
        return {"outcome": "kept running" if ok else "silent", "detail": message[-300:] or f"{written} frames"}
    if written == FRAMES and not warned:
        return {"outcome": "read", "detail": f"all {FRAMES} frames"}
    return {"outcome": "kept running" if warned else "silent",
            "detail": f"{written} of {FRAMES} frames written; {message[-300:] or 'no warning'}"}


def _frames(path: Path) -> tuple[int, set]:
    capture, count, sizes = cv2.VideoCapture(str(path)), 0, set()
    while True:
        ok, frame = capture.read()
        if not ok:
            return count, sizes
        count += 1
        sizes.add(frame.shape)


def fuzz_streams(n: int, seed: int, folder: Path, model: Path, timeout_s: float = 120.0) -> FuzzResult:
    specs = stream_cases(n, seed, folder, model)
    results = run_isolated("portrait_sdk.reliability.streams:check_stream_case", specs, timeout_s)
    return FuzzResult([{"name": s["name"], "kind": s["kind"], **r} for s, r in zip(specs, results)],
                      ok_outcomes=("error", "read", "kept running"))
