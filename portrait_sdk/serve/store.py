"""The models the service offers: every ``<name>.tflite`` in one folder, each with its card, and per model a small
pool of interpreters so that concurrent requests never share one (a LiteRT interpreter is not thread-safe)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import HTTPException

from portrait_sdk.model_card import ModelCard
from portrait_sdk.runtime import Segmenter, load_card


class SegmenterPool:
    """At most ``size`` Segmenters of one file, created on first need; each serves one request at a time."""

    def __init__(self, path: Path, size: int, num_threads: int, refine: bool):
        self.path, self.num_threads, self.refine = path, num_threads, refine
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Segmenter] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Segmenter]:
        """A Segmenter for this thread alone; waits while all ``size`` are in use."""
        with self._slots:
            with self._lock:
                segmenter = self._idle.pop() if self._idle else None
            if segmenter is None:
                segmenter = Segmenter.from_file(self.path, num_threads=self.num_threads, refine=self.refine)
            try:
                yield segmenter
            finally:
                with self._lock:
                    self._idle.append(segmenter)


class ModelStore:
    """The models of ``folder``, read once at start-up: a broken file stops the service there, naming the file."""

    def __init__(self, folder: str | Path, pool_size: int = 2, num_threads: int = 2):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such models folder (pass --models DIR, a folder of "
                                    "<name>.tflite files with their <name>.json model cards)")
        if pool_size < 1 or num_threads < 1:
            raise ValueError(f"pool_size and num_threads must be positive, got {pool_size} and {num_threads}")
        self.cards: dict[str, ModelCard] = {path.stem: load_card(path)
                                            for path in sorted(self.folder.glob("*.tflite"))}
        self._pools = {(name, refine): SegmenterPool(self.path(name), pool_size, num_threads, refine)
                       for name in self.cards for refine in (False, True)}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.tflite"

    def resolve(self, name: str | None) -> str:
        """``name`` if it is offered (404 otherwise); None means the default, the first portrait model."""
        if name is None:
            if not self.cards:
                raise HTTPException(503, f"no models in {self.folder}")
            portrait = [n for n, card in self.cards.items() if card.task == "portrait"]
            return (portrait or list(self.cards))[0]
        if name not in self.cards:
            raise HTTPException(404, f"unknown model {name!r}; available: {sorted(self.cards)}")
        return name

    def borrow(self, name: str, refine: bool = False):
        """A context manager lending a Segmenter of the (resolved) model ``name``."""
        return self._pools[name, refine].borrow()
