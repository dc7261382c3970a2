"""Run check functions over many cases in a child process, so that a crash (a segfault in a native decoder) or a
hang is recorded against the case that caused it instead of taking the harness down.

``run_isolated("portrait_sdk.reliability.fuzz:check_reader_case", specs, timeout_s)`` calls the function on each
spec (a JSON-able dict) in a child, one result dict per spec, in order. When the child dies or a case runs past
``timeout_s``, that case gets ``{"outcome": "crash" | "hang", ...}`` and a fresh child continues with the next one.
"""

from __future__ import annotations

import importlib
import json
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable


def _resolve(target: str) -> Callable[[dict], dict]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run_isolated(target: str, specs: list[dict], timeout_s: float = 60.0) -> list[dict]:
    """``target(spec)`` ("module:function") for each spec, in child processes; see the module docstring."""
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        spec_file = Path(folder) / "specs.json"
        spec_file.write_text(json.dumps(specs))
        while len(results) < len(specs):
            results += _run_child(target, spec_file, len(results), len(specs), timeout_s)
    return results


def _run_child(target: str, spec_file: Path, start: int, total: int, timeout_s: float) -> list[dict]:
    """Results from ``start`` on, until the child finishes, dies or hangs (that case's result is then the failure)."""
    log = spec_file.with_name(f"child-{start}.log")  # a file, not a pipe: decoder warnings must never block it
    with log.open("w") as stderr:
        child = subprocess.Popen([sys.executable, "-m", __name__, target, str(spec_file), str(start)],
                                 stdout=subprocess.PIPE, stderr=stderr, text=True)
    results: list[dict] = []
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        began = time.monotonic()
        while start + len(results) < total:
            if not selector.select(timeout=max(0.0, began + timeout_s - time.monotonic())):
                child.kill()
                child.wait()
                return results + [{"outcome": "hang", "detail": f"no answer within {timeout_s:g} s",
                                   "seconds": timeout_s}]
            line = child.stdout.readline()
            if not line:
                child.wait()
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                return results + [{"outcome": "crash", "detail": f"the check process exited with {child.returncode}"
                                   + (f": {' / '.join(tail)}" if tail else ""), "seconds": time.monotonic() - began}]
            results.append(json.loads(line))
            began = time.monotonic()
    child.wait()
    return results


def _child(target: str, spec_file: str, start: int) -> None:
    check = _resolve(target)
    for spec in json.loads(Path(spec_file).read_text())[start:]:
        began = time.perf_counter()
        result = check(spec)
        print(json.dumps({**result, "seconds": time.perf_counter() - began}), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
