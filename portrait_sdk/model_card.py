"""The JSON model card that sits beside every exported ``.tflite`` file (``<name>.tflite`` -> ``<name>.json``).

The card is what the runtime configures itself from (input size, colour order, normalisation, resize mode,
output semantics) and what a person reads (task, labels, training data and licence, metrics, latency). The same
facts are also written into the file's TFLite Model Metadata for MediaPipe Tasks. No TensorFlow import.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from portrait_sdk.files import atomic_write

CARD_VERSION = 1
RESIZE_MODES = ("stretch", "letterbox")
COLOR_ORDERS = ("RGB", "BGR")
OUTPUT_KINDS = ("softmax", "sigmoid")  # the activation already applied inside the graph


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int = 3  # 4: RGB + the previous frame's mask in channel 3
    color_order: str = "RGB"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # model input = (pixel - mean) / std, pixel in 0..255
    std: tuple[float, ...] = (255.0, 255.0, 255.0)
    resize: str = "letterbox"  # how a frame of another aspect ratio is fitted (letterbox pads with grey 128)


@dataclass(frozen=True)
class OutputSpec:
    kind: str = "softmax"  # softmax: channels are class probabilities; sigmoid: one foreground probability
    labels: tuple[str, ...] = ("background", "person")
    foreground_channel: int = 1


@dataclass(frozen=True)
class ModelCard:
    name: str  # e.g. "portraitnet_fp16"
    architecture: str  # registry name, e.g. "portraitnet"
    task: str
    precision: str  # a name of portrait_sdk.precisions.PRECISIONS ("unknown" when read from metadata only)
    input: InputSpec
    output: OutputSpec
    description: str = ""
    version: str = "0.1.0"
    author: str = "portrait-sdk"
    license: str = ""
    training_data: str = ""
    metrics: dict = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)
    card_version: int = CARD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (a temp file renamed over ``path``)."""
        atomic_write(path, lambda temp: temp.write_text(self.to_json()))

    @classmethod
    def from_dict(cls, data: dict, where: str = "model card") -> "ModelCard":
        try:
            card = cls(**{**data, "input": InputSpec(**_tuples(data["input"])),
                          "output": OutputSpec(**_tuples(data["output"]))})
        except (KeyError, TypeError, AttributeError) as error:  # a missing field, or one of the wrong type
            raise ValueError(f"{where}: not a valid model card ({error})") from None
        card.check(where)
        return card

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelCard":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no model card; export the model with `portrait-sdk export` to "
                                    "write the .tflite file together with its card")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: model card is not valid JSON ({error})") from None
        return cls.from_dict(data, str(path))

    def check(self, where: str = "model card") -> None:
        i, o = self.input, self.output
        problems = _type_problems(self)
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        if i.resize not in RESIZE_MODES:
            problems.append(f"input.resize must be one of {RESIZE_MODES}, got {i.resize!r}")
        if i.color_order not in COLOR_ORDERS:
            problems.append(f"input.color_order must be one of {COLOR_ORDERS}, got {i.color_order!r}")
        if i.channels not in (3, 4):
            problems.append(f"input.channels must be 3 or 4, got {i.channels}")
        if len(i.mean) != 3 or len(i.std) != 3 or not all(s > 0 for s in i.std):
            problems.append("input.mean and input.std need 3 values each, std > 0")
        if o.kind not in OUTPUT_KINDS:
            problems.append(f"output.kind must be one of {OUTPUT_KINDS}, got {o.kind!r}")
        if not 0 <= o.foreground_channel < max(1, len(o.labels)):
            problems.append(f"output.foreground_channel {o.foreground_channel} is not a label index")
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))


def _type_problems(card: ModelCard) -> list[str]:
    """Fields of the wrong type (a hand-edited or corrupted card), which the value checks could not compare."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    i, o = card.input, card.output
    wanted = {"name": isinstance(card.name, str), "task": isinstance(card.task, str),
              "input.height": isinstance(i.height, int) and not isinstance(i.height, bool) and i.height > 0,
              "input.width": isinstance(i.width, int) and not isinstance(i.width, bool) and i.width > 0,
              "input.channels": isinstance(i.channels, int), "input.resize": isinstance(i.resize, str),
              "input.color_order": isinstance(i.color_order, str), "output.kind": isinstance(o.kind, str),
              "input.mean": isinstance(i.mean, tuple) and all(map(number, i.mean)),
              "input.std": isinstance(i.std, tuple) and all(map(number, i.std)),
              "output.labels": isinstance(o.labels, tuple) and all(isinstance(v, str) for v in o.labels),
              "output.foreground_channel": isinstance(o.foreground_channel, int),
              "metrics": isinstance(card.metrics, dict), "latency_ms": isinstance(card.latency_ms, dict)}
    return [f"{name} has the wrong type or value" for name, ok in wanted.items() if not ok]


def card_path(model_path: str | os.PathLike) -> Path:
    """Where the card of ``model_path`` lives: the same name with ``.json``."""
    return Path(model_path).with_suffix(".json")


def _tuples(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
