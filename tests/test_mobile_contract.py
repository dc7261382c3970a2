"""The mobile apps read what ``portrait-sdk export`` writes, for every released model in export/.

``tests/vectors/mobile_contract.json`` names the model-card fields the apps read and the file packed in the
metadata that holds the card; the Kotlin parser (its unit tests check it reads exactly these) and the Swift
parser list the same paths, checked here from their sources.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from portrait_sdk import metadata
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec

REPO = Path(__file__).resolve().parents[1]
CONTRACT = json.loads((REPO / "tests" / "vectors" / "mobile_contract.json").read_text())
RELEASED = sorted((REPO / "export").glob("*.tflite"))
KOTLIN_CARD = REPO / "android_demo/app/src/main/java/com/portraitsdk/demo/core/ModelCard.kt"
SWIFT_CARD = REPO / "ios_demo/PortraitCore/Sources/PortraitCore/ModelCard.swift"
SPECS = {"input": InputSpec, "output": OutputSpec}
TYPES = {"height": int, "width": int, "channels": int, "foreground_channel": int, "mean": list, "std": list,
         "labels": list}


def _at(card: dict, path: str):
    node = card
    for key in path.split("."):
        node = node[key]
    return node


def _listed_fields(source: Path, block: str) -> list[str]:
    """The string literals of the list that follows ``block`` in an app's source (its declared card fields)."""
    found = re.search(re.escape(block) + r"[^)\]]*", source.read_text())
    assert found, f"{source}: no {block!r}"
    return re.findall(r'"([a-z_.]+)"', found.group(0))


def test_card_fields_are_model_card_fields():
    """Every path the apps read is a field the card dataclasses define (and so `export` writes)."""
    top = {f.name for f in dataclasses.fields(ModelCard)}
    for path in CONTRACT["card_fields"]:
        head, _, rest = path.partition(".")
        assert head in top, path
        if rest:
            assert rest in {f.name for f in dataclasses.fields(SPECS[head])}, path
    assert CONTRACT["card_file"] == metadata.CARD_FILE


def test_apps_declare_the_contracts_fields():
    assert _listed_fields(KOTLIN_CARD, "val CARD_FIELDS =") == CONTRACT["card_fields"]
    assert _listed_fields(SWIFT_CARD, "public let cardFields") == CONTRACT["card_fields"]


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.name)
def test_released_file_carries_what_the_apps_read(path: Path):
    beside = json.loads(path.with_suffix(".json").read_text())
    embedded = metadata.read_metadata(path)["card"]
    for field in CONTRACT["card_fields"]:
        value = _at(beside, field)
        assert isinstance(value, TYPES.get(field.rpartition(".")[2], str)), (field, value)
        assert _at(embedded, field) == value, f"{path.name}: {field} differs between the card and the metadata"


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.name)
def test_released_tensors_match_the_card(path: Path):
    """The app checks input 0 against the card and reads output 0 as (1, h, w, labels) probabilities."""
    from ai_edge_litert.interpreter import Interpreter

    card = ModelCard.load(path.with_suffix(".json"))
    interpreter = Interpreter(model_path=str(path))
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    assert [tuple(i["shape"]) for i in inputs] == [(1, card.input.height, card.input.width, card.input.channels)]
    assert inputs[0]["dtype"] == np.float32 and outputs[0]["dtype"] == np.float32
    channels = len(card.output.labels) if card.output.kind == "softmax" else 1
    assert tuple(outputs[0]["shape"]) == (1, card.input.height, card.input.width, channels)
