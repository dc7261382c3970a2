"""Native libraries' log lines, off by default: ``--verbose`` (or ``PORTRAIT_SDK_VERBOSE=1``) shows them.

Three sources print to stderr on a plain CPU machine although nothing is wrong: TensorFlow's C++ logging (CUDA /
cuInit probing, absl), OpenCV's own log (ten WARN / ERROR lines while it probes camera back-ends before our
"no camera" message) and LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, which no setting
turns off. Every failure they announce reaches the user anyway, as an exception with a message naming the file.
No TensorFlow or OpenCV import here.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

VERBOSE_ENV = "PORTRAIT_SDK_VERBOSE"
NATIVE_INFO = "INFO: "  # the prefix of LiteRT's info lines (TFLite minimal logging)
QUIET_LEVELS = {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENCV_LOG_LEVEL": "FATAL"}
VERBOSE_LEVELS = {"TF_CPP_MIN_LOG_LEVEL": "0", "OPENCV_LOG_LEVEL": "WARNING"}  # the libraries' defaults


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def configure(show: bool = False) -> None:
    """A command's first step: native log levels for this process and its children (``show``: everything).

    Quiet levels are defaults that a user's own ``TF_CPP_MIN_LOG_LEVEL`` / ``OPENCV_LOG_LEVEL`` override.
    """
    if show:
        os.environ[VERBOSE_ENV] = "1"
    if verbose():
        os.environ.update(VERBOSE_LEVELS)
    else:
        for key, value in QUIET_LEVELS.items():
            os.environ.setdefault(key, value)
    if "cv2" in sys.modules:  # OpenCV reads OPENCV_LOG_LEVEL when it is imported; later, set it directly
        levels = sys.modules["cv2"].utils.logging
        name = os.environ["OPENCV_LOG_LEVEL"].upper()
        levels.setLogLevel(getattr(levels, f"LOG_LEVEL_{'WARNING' if name == 'WARN' else name}",
                                   levels.LOG_LEVEL_FATAL))


@contextmanager
def native_info_dropped() -> Iterator[None]:
    """Drop the ``INFO:`` lines native code writes to stderr (file descriptor 2) inside the block; every other line
    written there meanwhile is passed on after it. Does nothing when verbose."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not line.startswith(NATIVE_INFO))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
