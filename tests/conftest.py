"""Shared fixtures. ``shared_datasets`` skips, saying why, when ../shared/datasets is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PORTRAIT_SDK_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared folder with datasets and baselines at {SHARED} "
                    "(set PORTRAIT_SDK_SHARED to point elsewhere)")
    return SHARED
