"""TFLite Model Metadata that MediaPipe Tasks' ImageSegmenter accepts: build it, attach it, read it back.

What the metadata holds, after MediaPipe's own ``selfie_segmentation_with_metadata.tflite``:

- input 0: an RGB ``ImageProperties`` image with ``NormalizationOptions`` (model input = (pixel - mean) / std,
  pixel in 0..255) and the resulting value range as ``Stats``;
- output 0: a ``GRAYSCALE`` ``ImageProperties`` map over dimensions 1..2 (height, width) whose channel axis is
  labelled by ``labels.txt`` (``TENSOR_AXIS_LABELS``); further outputs (the nail segmenter's instance and
  direction heads) get a tensor entry each, since the metadata must describe every output;
- the ``SEGMENTER_METADATA`` custom metadata with activation NONE: our graphs already end in softmax / sigmoid,
  so MediaPipe's confidence masks are the model's probabilities as they are;
- model name, description, version, author, licence, and our JSON model card as the model-level associated
  file ``model_card.json``, so a file without its card beside it still carries everything the runtime needs.

Attaching does what tflite-support's ``MetadataPopulator`` does: the metadata flatbuffer becomes a buffer of the
model named in its ``metadata`` list as ``TFLITE_METADATA``, and the associated files are appended to the
flatbuffer as a zip archive (the ``.tflite`` file is then also a valid zip). MediaPipe 1.2's ``metadata_writers``
fail to import, so this module writes the flatbuffers itself with the schema classes mediapipe ships.

MediaPipe's ImageSegmenter runs files with one output (or two: quality score + mask) and a 1- or 3-channel
input; the nail segmenter's three outputs and the video models' 4-channel input (RGB + previous mask, whose
normalization gets a 4th mean 0 / std 1) carry the same metadata for other readers, but MediaPipe refuses them.

No TensorFlow import: those classes are loaded from their files, because ``import mediapipe`` imports TensorFlow.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

import flatbuffers
import numpy as np

from portrait_sdk.model_card import ModelCard

METADATA_NAME = "TFLITE_METADATA"  # the model's metadata entry MediaPipe and tflite-support look up
SEGMENTER_METADATA_NAME = "SEGMENTER_METADATA"
LABELS_FILE = "labels.txt"
CARD_FILE = "model_card.json"
# custom_metadata (the segmenter options) is the newest schema field used here; it was added in 1.5.0.
MIN_PARSER_VERSION = "1.5.0"
ACTIVATIONS = ("NONE", "SIGMOID", "SOFTMAX")  # ImageSegmenterOptions.activation, by value
_MODEL_ID, _METADATA_ID, _SEGMENTER_ID = b"TFL3", b"M001", b"V001"
_SCHEMA_FILES = {"tflite": "schema_py_generated", "metadata": "metadata_schema_py_generated",
                 "segmenter": "image_segmenter_metadata_schema_py_generated"}


@functools.cache
def schemas() -> SimpleNamespace:
    """mediapipe's generated flatbuffer classes: ``.tflite`` (the model), ``.metadata``, ``.segmenter``.

    Loaded from mediapipe's folder without importing the package (that would import TensorFlow); they only need
    the ``flatbuffers`` package.
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("TFLite Model Metadata needs the flatbuffer schema classes of the mediapipe package: "
                          "pip install mediapipe")
    folder = Path(spec.submodule_search_locations[0]) / "tasks" / "metadata"
    return SimpleNamespace(**{key: _load_file(folder / f"{stem}.py", f"portrait_sdk._schema_{key}")
                              for key, stem in _SCHEMA_FILES.items()})


def _load_file(path: Path, name: str) -> ModuleType:
    if not path.is_file():
        raise ImportError(f"{path}: mediapipe's flatbuffer schema file is missing (mediapipe too old or broken?)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finish(table, identifier: bytes) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(table.Pack(builder), identifier)
    return bytes(builder.Output())


def _ubytes(data: bytes) -> np.ndarray:
    """A [ubyte] field's value: the generated Pack writes numpy arrays in one copy (lists byte by byte)."""
    return np.frombuffer(data, np.uint8)


def _input_ranges(card: ModelCard) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per-channel mean, std and the min / max the model input takes. A 4th channel (the previous frame's mask,
    already in 0..1) is passed through: mean 0, std 1."""
    mean, std = list(card.input.mean), list(card.input.std)
    low = [(0.0 - m) / s for m, s in zip(mean, std)]
    high = [(255.0 - m) / s for m, s in zip(mean, std)]
    if card.input.channels == 4:
        mean, std, low, high = mean + [0.0], std + [1.0], low + [0.0], high + [1.0]
    return mean, std, low, high


def _input_metadata(card: ModelCard):
    md = schemas().metadata
    mean, std, low, high = _input_ranges(card)
    return md.TensorMetadataT(
        name="image",
        description=f"{card.input.color_order} image of {card.input.width}x{card.input.height} "
                    f"({card.input.resize} to fit), normalized as (pixel - mean) / std.",
        content=md.ContentT(contentPropertiesType=md.ContentProperties.ImageProperties,
                            contentProperties=md.ImagePropertiesT(colorSpace=md.ColorSpaceType.RGB)),
        processUnits=[md.ProcessUnitT(optionsType=md.ProcessUnitOptions.NormalizationOptions,
                                      options=md.NormalizationOptionsT(mean=mean, std=std))],
        stats=md.StatsT(min=low, max=high))


def _mask_metadata(card: ModelCard):
    md = schemas().metadata
    kind = ("softmax over the labels" if card.output.kind == "softmax"
            else f"sigmoid probability of {card.output.labels[0]!r}")
    return md.TensorMetadataT(
        name="mask",
        description=f"Per-pixel {kind}, at the input size.",
        content=md.ContentT(contentPropertiesType=md.ContentProperties.ImageProperties,
                            contentProperties=md.ImagePropertiesT(colorSpace=md.ColorSpaceType.GRAYSCALE),
                            range=md.ValueRangeT(min=1, max=2)),
        stats=md.StatsT(min=[0.0], max=[1.0]),
        associatedFiles=[md.AssociatedFileT(name=LABELS_FILE, description="Labels of the channels of the mask.",
                                            type=md.AssociatedFileType.TENSOR_AXIS_LABELS)])


def _segmenter_options() -> object:
    segmenter = schemas().segmenter
    options = segmenter.ImageSegmenterOptionsT(activation=ACTIVATIONS.index("NONE"))
    return schemas().metadata.CustomMetadataT(name=SEGMENTER_METADATA_NAME,
                                              data=_ubytes(_finish(options, _SEGMENTER_ID)))


def build_metadata(card: ModelCard, output_names: list[str]) -> bytes:
    """The metadata flatbuffer of a model described by ``card`` whose outputs are ``output_names`` (mask first)."""
    md = schemas().metadata
    card.check(f"model card {card.name!r}")
    extra = [md.TensorMetadataT(name=name, description=f"Additional head {name!r} (see the model card).")
             for name in output_names[1:]]
    subgraph = md.SubGraphMetadataT(inputTensorMetadata=[_input_metadata(card)],
                                    outputTensorMetadata=[_mask_metadata(card), *extra],
                                    customMetadata=[_segmenter_options()])
    metadata = md.ModelMetadataT(
        name=card.name,
        description=card.description or f"{card.architecture}: {card.task} segmentation ({card.precision}).",
        version=card.version, author=card.author, license=card.license or None,
        subgraphMetadata=[subgraph],
        associatedFiles=[md.AssociatedFileT(name=CARD_FILE, description="The portrait-sdk model card (JSON).",
                                            type=md.AssociatedFileType.DESCRIPTIONS)],
        minParserVersion=MIN_PARSER_VERSION)
    return _finish(metadata, _METADATA_ID)


def _parse_model(model: bytes, where: str):
    tflite = schemas().tflite
    if not tflite.Model.ModelBufferHasIdentifier(model, 0):
        raise ValueError(f"{where}: not a TFLite flatbuffer (missing the TFL3 identifier)")
    return tflite.Model.GetRootAs(model, 0)


def output_names(model: bytes, where: str = "model") -> list[str]:
    """Names of the model's outputs in subgraph order: the signature's keys, else the tensor names."""
    root = _parse_model(model, where)
    subgraph = root.Subgraphs(0)
    by_tensor = {}
    if root.SignatureDefsLength():
        signature = root.SignatureDefs(0)
        by_tensor = {signature.Outputs(i).TensorIndex(): signature.Outputs(i).Name().decode()
                     for i in range(signature.OutputsLength())}
    indices = subgraph.OutputsAsNumpy()
    return [by_tensor.get(int(i), subgraph.Tensors(int(i)).Name().decode()) for i in indices]


def attach_metadata(model: bytes, card: ModelCard) -> bytes:
    """``model`` with the metadata of ``card`` and its associated files (labels, the card) attached.

    Existing TFLite Model Metadata and appended files are replaced; other metadata entries (the converter's
    runtime version and conversion metadata) are kept.
    """
    tflite = schemas().tflite
    names = output_names(model, f"model {card.name!r}")
    root = tflite.ModelT.InitFromObj(_parse_model(model, f"model {card.name!r}"))
    buffer = tflite.BufferT(data=_ubytes(build_metadata(card, names)))
    entries = [m for m in (root.metadata or []) if _text(m.name) == METADATA_NAME]
    if entries:
        root.buffers[entries[0].buffer] = buffer
    else:
        root.buffers.append(buffer)
        root.metadata = [*(root.metadata or []), tflite.MetadataT(name=METADATA_NAME, buffer=len(root.buffers) - 1)]
    files = {LABELS_FILE: "\n".join(card.output.labels) + "\n", CARD_FILE: card.to_json()}
    return _append_zip(_finish(root, _MODEL_ID), files)


def _append_zip(flatbuffer: bytes, files: dict[str, str]) -> bytes:
    """The flatbuffer followed by a zip of ``files`` (stored, not compressed, as MetadataPopulator writes it).

    zipfile's append mode on bytes that are no zip yet writes the archive after them, with offsets counted from
    the start of the file: the result reads both as a TFLite model and as a zip.
    """
    stream = io.BytesIO(flatbuffer)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return stream.getvalue()


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _floats(values) -> tuple[float, ...]:
    return () if values is None else tuple(float(v) for v in values)


def _metadata_bytes(root, model: bytes) -> bytes | None:
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name().decode() == METADATA_NAME:
            buffer = root.Buffers(entry.Buffer())
            if buffer.DataLength():
                return buffer.DataAsNumpy().tobytes()
            if buffer.Offset():  # large models keep buffers after the flatbuffer
                return model[buffer.Offset():buffer.Offset() + buffer.Size()]
    return None


def read_metadata(model: str | os.PathLike | bytes) -> dict:
    """The metadata of a ``.tflite`` file (path or bytes) as plain Python values.

    Keys: name, description, version, author, license, min_parser_version, input (name, color_space, mean, std,
    min, max), outputs (name, description, labels each), labels (output 0's), activation (the segmenter
    options'), card (the embedded model card as a dict, or None). Raises ValueError when the file has none.
    """
    where = "model bytes" if isinstance(model, (bytes, bytearray)) else str(model)
    data = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    md = schemas().metadata
    raw = _metadata_bytes(_parse_model(data, where), data)
    if raw is None:
        raise ValueError(f"{where}: has no TFLite Model Metadata ({METADATA_NAME}); export it with "
                         "`portrait-sdk export` or pass its model card")
    if not md.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
        raise ValueError(f"{where}: the {METADATA_NAME} buffer is not a metadata flatbuffer (no M001 identifier)")
    meta = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAs(raw, 0))
    files = _packed_files(data)
    subgraph = meta.subgraphMetadata[0]
    image = subgraph.inputTensorMetadata[0]
    norm = next((u.options for u in image.processUnits or []
                 if u.optionsType == md.ProcessUnitOptions.NormalizationOptions), None)
    colors = {v: k for k, v in vars(md.ColorSpaceType).items() if not k.startswith("_")}
    outputs = [{"name": _text(t.name), "description": _text(t.description),
                "labels": _labels(t, files, md)} for t in subgraph.outputTensorMetadata or []]
    card = files.get(CARD_FILE)
    return {
        "name": _text(meta.name), "description": _text(meta.description), "version": _text(meta.version),
        "author": _text(meta.author), "license": _text(meta.license),
        "min_parser_version": _text(meta.minParserVersion),
        "input": {"name": _text(image.name),
                  "color_space": colors.get(getattr(image.content.contentProperties, "colorSpace", 0)),
                  "mean": _floats(norm.mean if norm else None), "std": _floats(norm.std if norm else None),
                  "min": _floats(image.stats.min if image.stats else None),
                  "max": _floats(image.stats.max if image.stats else None)},
        "outputs": outputs,
        "labels": outputs[0]["labels"] if outputs else (),
        "activation": _activation(subgraph),
        "card": json.loads(card) if card is not None else None,
    }


def _packed_files(model: bytes) -> dict[str, str]:
    stream = io.BytesIO(model)
    if not zipfile.is_zipfile(stream):
        return {}
    with zipfile.ZipFile(stream) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def _labels(tensor, files: dict[str, str], md) -> tuple[str, ...]:
    for file in tensor.associatedFiles or []:
        if file.type == md.AssociatedFileType.TENSOR_AXIS_LABELS and _text(file.name) in files:
            return tuple(line for line in files[_text(file.name)].splitlines() if line)
    return ()


def _activation(subgraph) -> str | None:
    segmenter = schemas().segmenter
    for custom in subgraph.customMetadata or []:
        if _text(custom.name) == SEGMENTER_METADATA_NAME:
            options = segmenter.ImageSegmenterOptions.GetRootAs(np.asarray(custom.data, np.uint8).tobytes(), 0)
            return ACTIVATIONS[options.Activation()]
    return None
