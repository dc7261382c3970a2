"""The model zoo's table (``portrait-sdk models``) without TensorFlow: ``zoo.json``, measured from the registry.

Counting an architecture's params and MACs means building it in Keras (a TensorFlow import and ~40 s on 2 cores),
too much for printing a table, and impossible in the light install without the train extra. So the table is
measured once, committed as package data, and ``tests/test_cli.py`` checks that it equals a fresh measurement of
every registered architecture; after changing the zoo, ``uv run --extra train portrait-sdk models --measure``
writes it again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import resources
from pathlib import Path

from portrait_sdk.files import atomic_write

ZOO_FILE = Path(str(resources.files("portrait_sdk") / "zoo.json"))


def load_zoo(task: str | None = None, path: str | os.PathLike = ZOO_FILE) -> list[dict]:
    """The committed table's rows (of one task), in registry order."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the zoo table ({error}); write it with "
                         "`uv run --extra train portrait-sdk models --measure`") from None
    return [row for row in rows if task is None or row["task"] == task]


def measure_zoo() -> list[dict]:
    """One row per registered architecture at its default input size (builds each model: TensorFlow)."""
    from portrait_sdk.models import build_model, get_spec, list_models
    from portrait_sdk.models.complexity import count_macs, count_params

    rows = []
    for name in list_models():
        spec = get_spec(name)
        model = build_model(name)
        rows.append({
            "name": name, "task": spec.task,
            "input": "x".join(map(str, (*spec.default_input_size, spec.input_channels[0]))),
            "params": count_params(model), "macs": count_macs(model),
            "reference": None if spec.reference is None else dataclasses.asdict(spec.reference),
            "output": spec.output,
        })
    return json.loads(json.dumps(rows))  # tuples as lists, as read back from the file


def write_zoo(rows: list[dict], path: str | os.PathLike = ZOO_FILE) -> Path:
    path = Path(path)
    atomic_write(path, lambda temp: temp.write_text(json.dumps(rows, indent=1) + "\n"))
    return path
