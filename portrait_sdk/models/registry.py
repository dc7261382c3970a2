"""The model zoo's registry: what each architecture is, what it accepts, and how to build it.

Each architecture module registers one ``ModelSpec`` next to its ``build`` function, so that the CLI, the docs
and the tests read the same table. ``build_model`` checks every argument against the spec before any graph is
built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TASKS = ("portrait", "matting", "hair", "nails")
FOREGROUND = {"portrait": "person", "matting": "foreground", "hair": "hair", "nails": "nail"}  # the label name
# How a frame of another aspect ratio is fitted to the model, per task unless a spec says otherwise: matting
# stretches as MMNet, the other tasks letterbox (grey 128)
TASK_RESIZE = {"portrait": "letterbox", "matting": "stretch", "hair": "letterbox", "nails": "letterbox"}


@dataclass(frozen=True)
class Reference:
    """Published size of an architecture, to check our implementation against."""

    params: int
    macs: int
    input_size: tuple[int, int]
    source: str


@dataclass(frozen=True)
class ModelSpec:
    """Static description of one architecture of the zoo."""

    name: str
    task: str
    builder: Callable  # ``build(input_shape, training_heads=False, **options)`` -> tf_keras functional model
    description: str
    default_input_size: tuple[int, int]
    output_stride: int  # height and width must be multiples of this
    input_channels: tuple[int, ...] = (3,)  # allowed channel counts; the first is the default
    output: str = ""  # what the (inference) output is
    options: dict = field(default_factory=dict)  # builder keyword arguments and their allowed values
    reference: Reference | None = None
    resize: str = ""  # "stretch" or "letterbox"; empty: the task's (TASK_RESIZE)
    # The Keras layer names, in a compatible .tflite file's weighted-op order, that ``[model] pretrained`` fills
    # (``portrait_sdk.tflite_weights``); called with the built model. None: no published file fits.
    pretrained_layers: Callable | None = None
    # Heads an exported file carries (the first is the mask the runtimes read) and training-only heads that the
    # segmentation objective scores against the mask resized to their resolution.
    inference_heads: tuple[str, ...] = ("mask",)
    auxiliary_heads: tuple[str, ...] = ()
    # The architecture's own layer classes and whether QAT gives each its own output range
    # (``portrait_sdk.quantize``); the classes are Keras-serializable.
    custom_layers: dict = field(default_factory=dict)
    # model input = (pixel - mean) / std with pixels in 0..255: every zoo model takes [0, 1]
    input_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_std: tuple[float, float, float] = (255.0, 255.0, 255.0)

    @property
    def resize_mode(self) -> str:
        """How inputs are fitted to the model, for training-time validation, export, evaluation and runtime."""
        return self.resize or TASK_RESIZE[self.task]

    @property
    def foreground(self) -> str:
        return FOREGROUND[self.task]

    def contract(self, input_size, input_channels: int | None = None, options: dict | None = None) -> dict:
        """What a trained model's weights need to be used right: saved beside them by the trainer
        (``contract_path``), copied into the exported file's card."""
        return {"architecture": self.name, "task": self.task, "input_size": list(input_size),
                "input_channels": input_channels or self.input_channels[0], "options": dict(options or {}),
                "resize": self.resize_mode, "input_mean": list(self.input_mean), "input_std": list(self.input_std),
                "foreground": self.foreground, "inference_heads": list(self.inference_heads)}


def contract_path(weights) -> Path:
    """``best.keras`` -> ``best.contract.json``: the model contract the trainer writes beside its weights."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}.contract.json")


def custom_layers() -> dict:
    """Every registered architecture's own layer classes -> whether QAT quantizes their output."""
    return {cls: quantized for spec in _REGISTRY.values() for cls, quantized in spec.custom_layers.items()}


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.task not in TASKS:
        raise ValueError(f"model {spec.name!r}: unknown task {spec.task!r}; expected one of {TASKS}")
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered architectures, optionally only those of one task."""
    return [name for name, spec in _REGISTRY.items() if task is None or spec.task == task]


def get_spec(name: str) -> ModelSpec:
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid choices: {', '.join(list_models())}")
    return _REGISTRY[key]


def resolve_input_shape(spec: ModelSpec, input_size=None, input_channels=None) -> tuple[int, int, int]:
    """Validate a requested input size and channel count against ``spec``; return (H, W, C)."""
    if input_size is None:
        input_size = spec.default_input_size
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if len(input_size) != 2 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ValueError(f"{spec.name}: input_size must be (height, width) of positive ints, got {input_size!r}")
    bad = [v for v in input_size if v % spec.output_stride]
    if bad:
        raise ValueError(f"{spec.name}: input size {tuple(input_size)} must be divisible by the output stride "
                         f"{spec.output_stride} (e.g. {spec.default_input_size})")
    channels = spec.input_channels[0] if input_channels is None else input_channels
    if channels not in spec.input_channels:
        raise ValueError(f"{spec.name}: {channels} input channels not supported; valid choices: "
                         f"{', '.join(map(str, spec.input_channels))}")
    return (input_size[0], input_size[1], channels)


def check_options(spec: ModelSpec, options: dict) -> None:
    for key, value in options.items():
        if key == "training_heads":
            continue
        if key not in spec.options:
            valid = ", ".join(["training_heads", *spec.options]) or "none"
            raise ValueError(f"{spec.name}: unknown option {key!r}; valid options: {valid}")
        allowed = spec.options[key]
        if allowed and value not in allowed:
            raise ValueError(f"{spec.name}: {key}={value!r} not supported; valid choices: "
                             f"{', '.join(map(str, allowed))}")


def build_model(name: str, input_size=None, input_channels: int | None = None, training_heads: bool = False,
                **options):
    """Build a registered architecture as a functional tf_keras model.

    Args:
        name: a name from ``list_models()``.
        input_size: (height, width) or an int for a square; defaults to the spec's size.
        input_channels: 3 for RGB, 4 where the spec allows RGB + previous-frame mask.
        training_heads: also output the training-only heads (boundary, auxiliary, coarse); the model's outputs
            are then a dict keyed by head name, with the inference output under "mask".
        options: architecture options listed in the spec (e.g. ``width`` for MMNet).
    """
    spec = get_spec(name)
    shape = resolve_input_shape(spec, input_size, input_channels)
    check_options(spec, options)
    return spec.builder(shape, training_heads=training_heads, **options)
