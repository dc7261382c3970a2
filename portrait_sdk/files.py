"""Files: writing them atomically, where the datasets live, which extensions are images.

Standard library only: the TF-free inference side, the dataset readers and the trainer all use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""Photo suffixes (lower case) read and written everywhere: dataset folders, calibration images, previews."""

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Where datasets live: an explicit path, else ``$PORTRAIT_SDK_DATA``, else ``../shared/datasets``."""
    return Path(override or os.environ.get("PORTRAIT_SDK_DATA") or DEFAULT_DATA_ROOT)


@contextlib.contextmanager
def replacing(*paths: Path, keep_suffix: bool = False) -> Iterator[tuple[Path, ...]]:
    """Temp files beside ``paths`` to write inside the block; they are renamed over ``paths`` when the block ends
    and removed if it fails, so readers never see a half-written file and a failure leaves the old files (or none).
    All the files are renamed only once every one has been written.

    Temp names are hidden and unique to the process. They end in ``.tmp``, so that one left behind by a killed
    process matches no ``*.png`` glob; ``keep_suffix`` ends them in the target's suffix instead, for writers that
    pick the format from it (Keras' ``save``, matplotlib's ``savefig``, OpenCV's ``VideoWriter``).
    """
    pid = os.getpid()
    temps = tuple(path.with_name(f".{path.stem}.{pid}.tmp{path.suffix}" if keep_suffix else f".{path.name}.{pid}.tmp")
                  for path in map(Path, paths))
    try:
        yield temps
        for temp, path in zip(temps, paths):
            os.replace(temp, path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], keep_suffix: bool = False) -> None:
    """``write(temp)`` (e.g. ``lambda p: p.write_text(text)``), then rename it over ``path`` (see ``replacing``)."""
    with replacing(Path(path), keep_suffix=keep_suffix) as (temp,):
        write(temp)


def write_files(files: Mapping[Path, bytes]) -> None:
    """Write several files atomically and together (see ``replacing``)."""
    with replacing(*files) as temps:
        for temp, data in zip(temps, files.values()):
            temp.write_bytes(data)
