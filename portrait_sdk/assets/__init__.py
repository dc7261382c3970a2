"""The models that ship inside the package: ``portrait_sdk/assets/models/<name>.tflite`` + ``<name>.json`` card.

The preview, predict, bench and the server start with these when no model is named, so that ``portrait-sdk
preview --webcam`` needs nothing else. They are package data (``[tool.setuptools.package-data]`` in pyproject.toml), found
through ``importlib.resources`` wherever the package is installed. No TensorFlow.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from portrait_sdk.model_card import ModelCard, card_path

# setuptools installs packages unzipped, so the resource folder is a real directory LiteRT can open files in.
MODELS_DIR = Path(str(resources.files(__name__) / "models"))
RELEASED_DIR = Path("export")  # relative to the current folder: the checkout's released files, or your exports


def packaged_models(tasks: str | tuple[str, ...] | None = None) -> list[Path]:
    """The packaged ``.tflite`` files (with a card) whose card's task is in ``tasks``, sorted by name."""
    wanted = (tasks,) if isinstance(tasks, str) else tasks
    found = []
    for path in sorted(MODELS_DIR.glob("*.tflite")):
        if card_path(path).is_file() and (wanted is None or ModelCard.load(card_path(path)).task in wanted):
            found.append(path)
    return found


def default_model(tasks: str | tuple[str, ...]) -> Path:
    """The packaged model for a task (the first by name when several fit), or a FileNotFoundError that says what to do.

    ``tasks`` may list several tasks in order of preference (background blur works with portrait or matting models).
    """
    wanted = (tasks,) if isinstance(tasks, str) else tasks
    for task in wanted:
        models = packaged_models(task)
        if models:
            return models[0]
    raise FileNotFoundError(
        f"no packaged {' or '.join(wanted)} model in {MODELS_DIR} (the released models are not shipped in this "
        "build yet): pass --model PATH to a .tflite file with its .json model card, e.g. one written by "
        "`portrait-sdk export`")


def resolve_model(name_or_path: str | os.PathLike | None, tasks: str | tuple[str, ...]) -> Path:
    """What ``--model`` names (``model_path``), or the packaged model for ``tasks`` when it names none."""
    return model_path(name_or_path) if name_or_path else default_model(tasks)


def model_path(name_or_path: str | os.PathLike) -> Path:
    """A model file from a path (``.tflite``), the name of a packaged model (``selfie_fp16``) or of a released
    file in the current folder's ``export/`` (``mmnet_int8``, as ``portrait-sdk export`` and ``release`` write)."""
    path = Path(name_or_path)
    if path.suffix == ".tflite" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        return path
    for folder in (MODELS_DIR, RELEASED_DIR):
        candidate = folder / f"{name_or_path}.tflite"
        if candidate.is_file():
            return candidate
    packaged = [p.stem for p in packaged_models()]
    released = sorted(p.stem for p in RELEASED_DIR.glob("*.tflite") if p.stem not in packaged)
    raise FileNotFoundError(
        f"{name_or_path!r} is neither a .tflite file nor a model name; the names are: packaged (in {MODELS_DIR}): "
        f"{', '.join(packaged) or 'none'}; released (in {RELEASED_DIR.resolve()}): {', '.join(released) or 'none'}")
