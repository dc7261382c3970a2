"""Training recipes: one TOML file per model in ``training/``, checked key by key before anything runs.

A recipe has four tables and an optional fifth::

    [model]  name, input_size, input_channels, options
    [data]   root, train, val, val_filter, mode, backgrounds, skip_bad, limit_train, limit_val
    [loss]   objective, weights, options
    [train]  epochs, batch_size, learning_rate, ...
    [qat]    weights, epochs, learning_rate, output_weights, calibrate_temperature (``portrait-sdk qat``)

An unknown key or a value of the wrong type raises ``RecipeError`` naming the file, the table and the key.
``parse_table`` does the same for other TOML files (``portrait_sdk.release``'s manifest).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from portrait_sdk.files import data_root


class RecipeError(ValueError):
    """A recipe (or another file parsed by ``parse_table``) that cannot be used, with the file and key in the
    message."""


@dataclass(frozen=True)
class ModelConfig:
    name: str
    input_size: list[int]
    input_channels: int = 0  # 0: the architecture's default
    options: dict = field(default_factory=dict)
    # warm start from a published .tflite (portrait_sdk.tflite_weights, by the architecture's mapping): absolute,
    # relative to the recipe, or relative to the shared folder (the data root's parent), e.g.
    # "baselines/selfie_segmentation.tflite"
    pretrained: str = ""
    # divide the warm start's mask logits by the temperature that fits the training images best before training
    # (portrait_sdk.calibration): MediaPipe's near-binary logits otherwise leave cross-entropy no gradient on the
    # pixels it gets right, and fine-tuning forgets
    calibrate_temperature: bool = False

    def pretrained_path(self, recipe_path: Path, root: str = "") -> Path:
        path = Path(self.pretrained)
        if path.is_absolute():
            return path
        beside = recipe_path.parent / path
        return beside if beside.exists() else data_root(root or None).parent / path


@dataclass(frozen=True)
class DataConfig:
    train: str  # folder under the data root (or absolute)
    val: str
    root: str = ""  # empty: $PORTRAIT_SDK_DATA or ../shared/datasets
    # more training folders appended to train, e.g. a teacher's pseudo-labels (`portrait-sdk pseudolabel`):
    # absolute, relative to the recipe, or under the data root
    extra_train: list[str] = field(default_factory=list)
    val_filter: dict = field(default_factory=dict)  # e.g. {label_source = "teacher"}
    val_groups: str = ""  # index.csv column to also report validation metrics by, e.g. "source" -> iou_vikram
    oversample: dict = field(default_factory=dict)  # e.g. {source = "vikram", times = 4}: rare samples x times
    mode: str = "segmentation"  # segmentation | consistency | matting | video
    backgrounds: str = ""  # folder of background photos (matting: background swap; others: see composite)
    composite: dict = field(default_factory=dict)  # CompositeConfig: {p, negative_p, scale} (needs backgrounds)
    augment: dict = field(default_factory=dict)  # DeformConfig overrides, e.g. {angle = [-15, 15]}
    prior: dict = field(default_factory=dict)  # video mode's PriorConfig, e.g. {kinds = [["empty", 0.6], ...]}
    skip_bad: bool = False  # drop unreadable / inconsistent samples with a warning instead of failing
    limit_train: int = 0  # use only the first N training samples (0: all)
    limit_val: int = 0

    def path(self, split: str) -> Path:
        folder = Path(getattr(self, split))
        return folder if folder.is_absolute() else data_root(self.root or None) / folder

    def extra_paths(self, recipe_path: Path) -> list[Path]:
        paths = []
        for folder in map(Path, self.extra_train):
            beside = recipe_path.parent / folder
            paths.append(folder if folder.is_absolute() else beside if beside.exists()
                         else data_root(self.root or None) / folder)
        return paths


@dataclass(frozen=True)
class LossConfig:
    objective: str  # see portrait_sdk.objectives.OBJECTIVES
    weights: dict = field(default_factory=dict)  # per-term weights overriding the objective's defaults
    options: dict = field(default_factory=dict)  # objective options, e.g. {criterion = "lovasz"}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    # AdamW's decoupled decay: each step multiplies kernels by (1 - weight_decay * lr), i.e. 5e-4 at lr 5e-4 is a
    # 2.5e-7 shrink a step. PyTorch Adam's weight_decay (PortraitNet's 5e-4) is the coupled ``l2`` below.
    weight_decay: float = 0.0
    l2: float = 0.0  # coupled L2: 0.5 * l2 * sum of squared conv / dense kernels added to the loss
    lr_schedule: str = "step"  # step: x lr_decay every lr_decay_epochs (0: constant) | cosine: anneal to 0
    lr_decay: float = 1.0  # multiply the learning rate by this ...
    lr_decay_epochs: int = 0  # ... every this many epochs (0: constant)
    checkpoint_every: int = 200  # steps
    # before each validation, BN moving statistics = the mean over this many training batches (0: off; see
    # train.precise_batch_norm): for fine-tunings with few steps an epoch, where moving averages trail the weights
    precise_bn: int = 0
    seed: int = 0
    metric: str = "iou"  # validation metric that selects the best checkpoint
    metric_mode: str = "max"  # max | min
    steps_per_epoch: int = 0  # 0: one pass over the training set
    init_weights: str = ""  # warm start from a .keras / .weights.h5 file (relative to the recipe)
    # After training, try the weight-space blends (1 - a) * start + a * best for these a (WiSE-FT, Wortsman et al.
    # 2022) and keep the best on val: a fine-tuned warm start gains the new data without forgetting the old.
    # Float trainings only (a QAT run, which transforms the model, skips it).
    wise_ft: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class QatConfig:
    """Quantization-aware fine-tuning of the recipe's trained float model (``portrait-sdk qat``, whose flags
    override these): the recipe's data and objective, ``epochs`` at a constant ``learning_rate``."""
    weights: str  # the trained float model (.keras), relative to the recipe (or absolute)
    epochs: int = 5
    learning_rate: float = 1e-5
    # also copy the QAT model (qat_model.keras, the best epoch) to this file, relative to the recipe, e.g. for
    # export/release.toml's qat_weights; empty: the run folder only
    output_weights: str = ""
    # fit the float model's temperature first ([model] calibrate_temperature): near-binary logits (MediaPipe's,
    # median |z| ~100) turn fake quantization's small errors into losses of hundreds of nats and QAT diverges
    calibrate_temperature: bool = False


@dataclass(frozen=True)
class Recipe:
    model: ModelConfig
    data: DataConfig
    loss: LossConfig
    train: TrainConfig
    qat: QatConfig | None = None
    path: Path = Path("recipe.toml")

    @property
    def name(self) -> str:
        return self.path.stem


_TABLES = {"model": ModelConfig, "data": DataConfig, "loss": LossConfig, "train": TrainConfig, "qat": QatConfig}
_OPTIONAL_TABLES = {"qat"}


def _check_type(value, annotation, where: str):
    """``value`` if it is an ``annotation`` (ints taken as floats); a dataclass annotation parses a table."""
    if dataclasses.is_dataclass(annotation):
        return parse_table(annotation, value, where)
    origin = typing.get_origin(annotation) or annotation
    if origin is types.UnionType:  # e.g. bool | str: any of them
        origin = annotation
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is int and isinstance(value, bool) or not isinstance(value, origin):
        raise RecipeError(f"{where} must be {getattr(origin, '__name__', origin)}, got {type(value).__name__} "
                          f"{value!r}")
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item, where + "[]") for v in value]
    return value


def check_table(cls, table, where: str, required: bool = True) -> dict:
    """``table``'s values checked against the dataclass ``cls``' fields and converted (ints to floats, nested
    tables to their dataclass); ``required=False`` lets required keys be missing (a table of defaults)."""
    if not isinstance(table, dict):
        raise RecipeError(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise RecipeError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if required and name not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"{where}: missing required key {missing[0]!r}")
    return {key: _check_type(value, hints[key], f"{where} {key}") for key, value in table.items()}


def parse_table(cls, table, where: str):
    """A TOML table as the dataclass ``cls``; ``where`` (file and table) starts every error message."""
    return cls(**check_table(cls, table, where))


def read_toml(path: str | os.PathLike, what: str) -> dict:
    """The TOML document at ``path``; ``what`` names the kind of file in the error when there is none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: not valid TOML: {error}") from None


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Parse and check a recipe file."""
    path = Path(path)
    document = read_toml(path, "recipe file")
    unknown = sorted(set(document) - set(_TABLES))
    if unknown:
        raise RecipeError(f"{path}: unknown table [{unknown[0]}]; valid tables: {', '.join(_TABLES)}")
    missing = [t for t in _TABLES if t not in document and t not in _OPTIONAL_TABLES]
    if missing:
        raise RecipeError(f"{path}: missing table [{missing[0]}]")
    parts = {name: parse_table(cls, document[name], f"{path}: [{name}]") for name, cls in _TABLES.items()
             if name in document}
    recipe = Recipe(**parts, path=path)
    _check_values(recipe)
    return recipe


def _check_values(recipe: Recipe) -> None:
    where = f"{recipe.path}:"
    if len(recipe.model.input_size) != 2:
        raise RecipeError(f"{where} [model] input_size must be [height, width]")
    if recipe.data.mode not in ("segmentation", "consistency", "matting", "video"):
        raise RecipeError(f"{where} [data] mode must be segmentation, consistency, matting or video, "
                          f"got {recipe.data.mode!r}")
    times = recipe.data.oversample.get("times")
    if recipe.data.oversample and (type(times) is not int or times < 1 or len(recipe.data.oversample) < 2):
        raise RecipeError(f"{where} [data] oversample needs an integer times >= 1 and at least one column to "
                          f"match, e.g. {{source = \"vikram\", times = 4}}; got {recipe.data.oversample}")
    if recipe.train.lr_schedule not in ("step", "cosine"):
        raise RecipeError(f"{where} [train] lr_schedule must be step or cosine, got {recipe.train.lr_schedule!r}")
    if recipe.train.metric_mode not in ("max", "min"):
        raise RecipeError(f"{where} [train] metric_mode must be max or min")
    for key in ("epochs", "batch_size", "checkpoint_every"):
        if getattr(recipe.train, key) <= 0:
            raise RecipeError(f"{where} [train] {key} must be positive")
    if recipe.train.learning_rate <= 0:
        raise RecipeError(f"{where} [train] learning_rate must be positive")
