"""Native libraries' log lines are off by default and shown with --verbose (PORTRAIT_SDK_VERBOSE=1): LiteRT's
XNNPACK notice, OpenCV's camera probing; lines that are not LiteRT INFO pass through."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from portrait_sdk.assets import MODELS_DIR
from portrait_sdk.quiet import VERBOSE_ENV

PACKAGED = next(iter(sorted(MODELS_DIR.glob("*.tflite"))))


def _run(code: str, verbose: bool = False, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (VERBOSE_ENV, "OPENCV_LOG_LEVEL", "TF_CPP_MIN_LOG_LEVEL")}
    if verbose:
        env[VERBOSE_ENV] = "1"
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_xnnpack_notice_is_dropped_unless_verbose():
    code = f"from portrait_sdk.runtime import Segmenter; Segmenter.from_file({str(PACKAGED)!r}); print('ok')"
    quiet, verbose = _run(code), _run(code, verbose=True)
    assert quiet.returncode == 0 and quiet.stdout == "ok\n" and quiet.stderr == "", quiet.stderr
    assert "INFO: Created TensorFlow Lite XNNPACK delegate" in verbose.stderr


def test_other_stderr_lines_inside_the_block_pass_through():
    code = textwrap.dedent("""
        import os, sys
        from portrait_sdk.quiet import native_info_dropped
        try:
            with native_info_dropped():
                os.write(2, b"INFO: native noise\\nERROR: native problem\\n")
                print("python warning", file=sys.stderr)
                raise ValueError("boom")
        except ValueError:
            print("after", file=sys.stderr)
    """)
    assert _run(code).stderr == "ERROR: native problem\npython warning\nafter\n"


def test_camera_probing_prints_only_the_clear_message(tmp_path):
    args = ["-m", "portrait_sdk.preview", "--camera", "99", "--headless", "--output", str(tmp_path / "o.mp4")]
    quiet = _run("", False, *args)
    lines = quiet.stderr.splitlines()
    assert quiet.returncode == 2 and len(lines) == 1 and "no camera at index 99" in lines[0], quiet.stderr
    verbose = _run("", False, *args, "--verbose")
    assert "WARN" in verbose.stderr and "no camera at index 99" in verbose.stderr
