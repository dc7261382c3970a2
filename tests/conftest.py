"""Shared fixtures. ``shared_dir`` skips, saying why, when ../shared is absent.

Tests that need a piece of the system outside the Python environment are marked ``@pytest.mark.system("NAME")``
(or call ``require_system``): without it they skip with a message naming the piece and the command that installs
it. ``.ci/run`` installs every piece and sets ``PORTRAIT_SDK_REQUIRE_SYSTEM=1``, which turns such a skip into a
failure there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portrait_sdk.gpu_check import SWIFTSHADER_ICD

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PORTRAIT_SDK_SHARED", REPO.parent / "shared"))
REQUIRE_SYSTEM_ENV = "PORTRAIT_SDK_REQUIRE_SYSTEM"
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / "web" / "node_modules"
# name: (is it there?, what it is, the command that installs it)
SYSTEM_PIECES = {
    "vulkan": (SWIFTSHADER_ICD.is_file, f"a Vulkan driver for LiteRT's GPU accelerator ({SWIFTSHADER_ICD}, "
               "SwiftShader from Debian's chromium)", "apt-get install -y chromium"),
    "chromium": (CHROMIUM.is_file, f"Debian's chromium at {CHROMIUM}", "apt-get install -y chromium"),
    "node": (lambda: shutil.which("node") is not None, "node", "apt-get install -y nodejs npm"),
    "web_packages": (lambda: (NODE_MODULES / "playwright-core").is_dir()
                     and (NODE_MODULES / "@mediapipe" / "tasks-vision").is_dir(),
                     f"the browser demo's npm packages in {NODE_MODULES}", "npm ci --prefix web"),
    "uv": (lambda: shutil.which("uv") is not None, "uv", "pip install uv"),
}


def missing_system(*names: str) -> list[str]:
    """'<piece> (install: <command>)' for each of ``names`` that is absent."""
    return [f"{what} (install: {command})" for present, what, command in map(SYSTEM_PIECES.__getitem__, names)
            if not present()]


def require_system(*names: str) -> None:
    """Skip, naming what is missing and how to install it; fail instead under PORTRAIT_SDK_REQUIRE_SYSTEM=1."""
    missing = missing_system(*names)
    if not missing:
        return
    message = "needs " + " and ".join(missing)
    if os.environ.get(REQUIRE_SYSTEM_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_SYSTEM_ENV}=1 (as in .ci/run) requires every system piece", pytrace=False)
    pytest.skip(message)


def pytest_configure(config):
    config.addinivalue_line("markers", "system(*names): needs these system pieces (conftest.SYSTEM_PIECES)")


def pytest_runtest_setup(item):
    for marker in item.iter_markers("system"):
        require_system(*marker.args)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared folder with datasets and baselines at {SHARED} "
                    "(set PORTRAIT_SDK_SHARED to point elsewhere)")
    return SHARED
