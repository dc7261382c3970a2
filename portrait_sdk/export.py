"""Export: a trained Keras model -> ``<name>_<precision>.tflite`` with TFLite Model Metadata + its JSON model card.

One table, ``PRECISIONS`` (in ``portrait_sdk.precisions``, TF-free), lists what can be exported: read it rather
than repeating its names. Every file is the inference graph only: a static batch-1 NHWC input, the training-only
heads stripped (only the spec's ``inference_heads``: "mask" for every architecture of the zoo), and a
probability map at the end (SOFTMAX for 2+ channels, LOGISTIC for 1: both run on the mobile GPU delegate), so a
runtime, MediaPipe's ImageSegmenter included, reads probabilities without knowing the architecture.

Quantized files keep float32 input and output tensors (the int8 ones add a QUANTIZE / DEQUANTIZE pair at the
ends): every runtime then feeds the same normalized float image and reads the same probabilities whatever the
precision, and no runtime needs an int8 input path (the GPU delegate computes in floating point anyway).

Nothing is written until the file has been converted, measured, given its metadata and checked against the GPU
delegate's op list; the ``.tflite`` and ``.json`` are then written to temp files and renamed into place, so a
failed export leaves the previous files (or none) and no half-written one.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import flatbuffers
import numpy as np

from portrait_sdk import preprocess
from portrait_sdk.files import IMAGE_EXTENSIONS, write_files
from portrait_sdk.gpu_ops import gpu_incompatibilities
from portrait_sdk.keras_env import keras, tf
from portrait_sdk.metadata import attach_metadata, schemas
from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path
from portrait_sdk.precisions import PRECISIONS, Precision, precision_spec  # noqa: F401  (re-exported)


CARD_FIELDS = ("description", "version", "author", "license", "training_data", "metrics")  # given by the caller
LATENCY_KEY = "cpu_2_threads"  # median ms of ``measure_latency`` (ai-edge-litert, XNNPACK, 2 threads)
LATENCY_THREADS = 2
MAX_CALIBRATION_SAMPLES = 100


def load_model(path: str | os.PathLike) -> "keras.Model":
    """A ``.keras`` file saved by the trainer, or a QAT model (loaded inside ``quantize_scope``).

    Only a file that names tfmot's layers gets the scope, so that loading a float model imports neither tfmot nor
    the trainer (``portrait_sdk.quantize`` imports both).
    """
    import portrait_sdk.models  # noqa: F401  (registers the custom layers)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras file saved by `portrait-sdk train`")
    if not _names_tfmot_layers(path):
        return keras.models.load_model(path, compile=False)
    from portrait_sdk.quantize import quantize_scope

    with quantize_scope():
        return keras.models.load_model(path, compile=False)


def _names_tfmot_layers(path: Path) -> bool:
    """Whether a ``.keras`` file (a zip whose ``config.json`` gives each layer's module) holds tfmot's layers; a
    file that is no such zip is left to Keras to reject."""
    try:
        with zipfile.ZipFile(path) as archive:
            return b"tensorflow_model_optimization" in archive.read("config.json")
    except (zipfile.BadZipFile, KeyError):
        return False


def is_quantization_aware(model: "keras.Model") -> bool:
    """Whether tfmot's ``quantize_model`` wrapped the model (its layers then live in tfmot's modules)."""
    return any(type(layer).__module__.startswith("tensorflow_model_optimization") for layer in model.submodules)


def architecture_of(model: "keras.Model", architecture: str | None = None) -> str:
    """The registry name of ``model``: ``architecture`` if given, else the model's name attribute."""
    from portrait_sdk.models import get_spec

    name = architecture or model.name
    try:
        return get_spec(name).name
    except ValueError as error:
        raise ValueError(f"model {model.name!r}: {error}; pass the architecture explicitly "
                         "(architecture=... / --model)") from None


def _probability(logits, head: str):
    if logits.shape[-1] == 1:
        return keras.layers.Activation("sigmoid", name=f"{head}_probability")(logits)
    return keras.layers.Softmax(axis=-1, name=f"{head}_probability")(logits)


def inference_graph(model: "keras.Model", heads: tuple[str, ...] = ("mask",)) -> "keras.Model":
    """``model`` with a static batch of 1, only ``heads`` (its spec's ``inference_heads``; "mask" first), and
    probabilities as outputs (a dict)."""
    shape = model.input_shape[1:]
    if None in shape[:2]:
        raise ValueError(f"model {model.name!r}: input shape {model.input_shape} needs a static height and width")
    inputs = keras.Input(shape=shape, batch_size=1, name="image")
    outputs = model(inputs, training=False)
    if not isinstance(outputs, dict):
        outputs = {"mask": outputs}
    heads = {head: _probability(outputs[head], head) for head in heads if head in outputs}
    if "mask" not in heads:
        raise ValueError(f"model {model.name!r}: outputs {sorted(outputs)} have no 'mask' head")
    return keras.Model(inputs, heads, name=model.name)


def _ordered(outputs) -> dict:
    """Model outputs as a dict in file order: the mask first (output 0, what runtimes read), then the rest."""
    if not isinstance(outputs, dict):
        return {"mask": outputs}
    return {k: outputs[k] for k in sorted(outputs, key=lambda k: (k != "mask", k))}


def _configure(converter, precision: Precision, representative: Callable[[], Iterator] | None) -> None:
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision.name == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # QAT models: converts their fake-quant ranges to int8
    if precision.name == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision.name == "int8":
        if representative is None:
            raise ValueError("precision int8 needs representative data (a folder of images or arrays)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # fail, not fall back to float


def to_tflite(model: "keras.Model", precision: str = "float32",
              representative: Callable[[], Iterator] | None = None) -> bytes:
    """Convert ``model`` as it is (outputs not changed) to a batch-1 TFLite flatbuffer with builtin ops only.

    The output tensors are named after the model's dict keys ("mask" for a single output), "mask" first, and
    listed under a "serving_default" signature.
    """
    spec = precision_spec(precision)
    input_spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")
    function = tf.function(lambda x: _ordered(model(x, training=False))).get_concrete_function(input_spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    # The frozen-graph path, not a SavedModel round trip: it is faster, QAT models fall back to it anyway, and
    # its output tensors keep the function's output names ("Identity", "Identity_1", ...), which tell the heads
    # apart: the converter orders the outputs its own way.
    converter.experimental_lower_to_saved_model = False
    _configure(converter, spec, representative)
    keys = tf.nest.flatten({key: key for key in function.structured_outputs})  # the order of function.outputs
    heads = {tensor.name.split(":")[0]: key for tensor, key in zip(function.outputs, keys)}
    return _name_outputs(converter.convert(), heads, list(_ordered(model.output)))


def _name_outputs(flatbuffer: bytes, heads: dict[str, str], order: list[str]) -> bytes:
    """Rename the output tensors after their heads (``heads``: converter name -> head), list them in ``order``
    (runtimes read output 0 as the mask) and record that as the file's signature."""
    tflite = schemas().tflite
    root = tflite.ModelT.InitFromObj(tflite.Model.GetRootAs(flatbuffer, 0))
    subgraph = root.subgraphs[0]
    found = {subgraph.tensors[i].name.decode(): int(i) for i in subgraph.outputs}
    if set(found) != set(heads):
        raise ValueError(f"the converter's outputs {sorted(found)} are not the function's {sorted(heads)}")
    index = {heads[name]: i for name, i in found.items()}
    subgraph.outputs = [index[head] for head in order]
    for head in order:
        subgraph.tensors[index[head]].name = head
    root.signatureDefs = [tflite.SignatureDefT(
        signatureKey="serving_default", subgraphIndex=0,
        inputs=[tflite.TensorMapT(name="image", tensorIndex=int(subgraph.inputs[0]))],
        outputs=[tflite.TensorMapT(name=head, tensorIndex=index[head]) for head in order])]
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(root.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"representative data folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())
    if not files:
        raise ValueError(f"representative data folder {folder} has no images "
                         f"({', '.join(sorted(IMAGE_EXTENSIONS))}); int8 calibration needs some")
    return files


def representative_dataset(data: str | os.PathLike | Iterable[np.ndarray], spec: InputSpec,
                           max_samples: int = MAX_CALIBRATION_SAMPLES) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's calibration generator, from a folder of images (searched recursively; preprocessed with
    ``preprocess.model_input``, as the runtime does) or from arrays that already are model inputs ((H, W, C) or
    (1, H, W, C), normalized)."""
    shape = (1, spec.height, spec.width, spec.channels)
    if isinstance(data, (str, os.PathLike)):
        from portrait_sdk.data import read_image

        files = _image_files(Path(data))[:max_samples]
        return lambda: ([preprocess.model_input(read_image(path), spec)] for path in files)

    arrays = []
    for i, array in enumerate(data):
        if i == max_samples:
            break
        array = np.asarray(array, np.float32)
        array = array[None] if array.shape == shape[1:] else array
        if array.shape != shape:
            raise ValueError(f"representative array {i} has shape {array.shape}; the model input is {shape}")
        arrays.append(array)
    if not arrays:
        raise ValueError("representative data is empty; int8 calibration needs some inputs")
    return lambda: ([array] for array in arrays)


def measure_latency(model: str | os.PathLike | bytes, runs: int = 50, threads: int = LATENCY_THREADS,
                    warmup: int = 3) -> float:
    """Median wall time in ms of ``invoke`` over ``runs`` runs on ai-edge-litert (XNNPACK, ``threads`` threads)."""
    return measure_latencies([model], runs, threads, warmup)[0]


def measure_latencies(models: list, runs: int = 50, threads: int = LATENCY_THREADS, warmup: int = 3) -> list[float]:
    """``measure_latency`` of several files (paths or flatbuffers) measured together: each round invokes every
    model once, in an order reversed every other round, so that the machine's drift (other jobs, clock speed,
    caches) falls on all of them alike and their ratios can be compared, as sequential medians cannot."""
    from ai_edge_litert.interpreter import Interpreter

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    interpreters = []
    for model in models:
        interpreter = (Interpreter(model_content=bytes(model), num_threads=threads)
                       if isinstance(model, (bytes, bytearray))
                       else Interpreter(model_path=os.fspath(model), num_threads=threads))
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.full(detail["shape"], 0.5, detail["dtype"]))
        interpreters.append(interpreter)
    times = [[] for _ in interpreters]
    order = list(range(len(interpreters)))
    for i in range(warmup + runs):
        for index in (order if i % 2 else order[::-1]):
            start = time.perf_counter()
            interpreters[index].invoke()
            if i >= warmup:
                times[index].append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(series) for series in times]


def read_contract(weights: str | os.PathLike) -> dict | None:
    """The model contract the trainer saved beside ``weights`` (``registry.contract_path``), or None."""
    import json

    from portrait_sdk.models.registry import contract_path

    path = contract_path(weights)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable model contract ({error})") from None


def make_card(model: "keras.Model", architecture: str, name: str, precision: str,
              fields: Mapping[str, Any] | None = None, contract: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of an export of ``model`` (its inference graph), with the caller's ``CARD_FIELDS``: task, resize
    mode, normalization and foreground label copied from the model contract (the trained weights' own, else
    the architecture's spec)."""
    from portrait_sdk.models import get_spec

    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(CARD_FIELDS))
    if unknown:
        raise ValueError(f"unknown card fields {unknown}; valid: {', '.join(CARD_FIELDS)}")
    spec = get_spec(architecture)
    _, height, width, channels = model.input_shape
    contract = dict(contract or spec.contract((height, width), channels))
    mask = model.output["mask"] if isinstance(model.output, dict) else model.output
    classes = int(mask.shape[-1])
    foreground = contract["foreground"]
    labels = (foreground,) if classes == 1 else ("background", foreground,
                                                  *(f"class_{i}" for i in range(2, classes)))
    output = OutputSpec(kind="sigmoid" if classes == 1 else "softmax", labels=labels,
                        foreground_channel=0 if classes == 1 else 1)
    fields.setdefault("description", spec.description)
    return ModelCard(name=name, architecture=spec.name, task=contract["task"], precision=precision,
                     input=InputSpec(height=height, width=width, channels=channels, resize=contract["resize"],
                                     mean=tuple(contract["input_mean"]), std=tuple(contract["input_std"])),
                     output=output, **fields)


def export_model(model_or_keras_path: "keras.Model | str | os.PathLike", out_dir: str | os.PathLike, name: str,
                 precision: str, representative_data: str | os.PathLike | Iterable[np.ndarray] | None = None,
                 card_fields: Mapping[str, Any] | None = None, architecture: str | None = None,
                 latency_runs: int = 50) -> Path:
    """Export one precision of a model to ``out_dir/<name>_<suffix>.tflite`` + ``.json`` card; returns the path.

    Args:
        model_or_keras_path: a tf_keras model (inference or ``training_heads=True`` graph, or QAT-wrapped for
            ``qat_int8``) or a ``.keras`` file saved by the trainer.
        name: the file stem before the precision suffix, e.g. "portraitnet" -> portraitnet_fp16.tflite.
        precision: a key of ``PRECISIONS``.
        representative_data: for int8, see ``representative_dataset``.
        card_fields: ``CARD_FIELDS`` values for the card (licence and training data text, metrics, ...).
        architecture: registry name; defaults to the model's name attribute.
        latency_runs: runs of ``measure_latency`` for the card's latency; 0 leaves it to the caller (the release
            times all of a model's files together and writes that into the cards it ships).
    """
    spec = precision_spec(precision)
    from_file = isinstance(model_or_keras_path, (str, os.PathLike))
    model = load_model(model_or_keras_path) if from_file else model_or_keras_path
    contract = read_contract(model_or_keras_path) if from_file else None
    architecture = architecture_of(model, architecture or (contract or {}).get("architecture"))
    if spec.needs_qat != is_quantization_aware(model):
        raise ValueError(f"model {model.name!r}: precision {precision} needs a model "
                         + ("wrapped by quantize_model (see portrait_sdk.quantize)" if spec.needs_qat else
                            "without quantization-aware wrappers; export QAT models as qat_int8"))
    if spec.needs_data and representative_data is None:
        raise ValueError(f"precision {precision} needs representative data (a folder of images)")

    from portrait_sdk.models import get_spec

    graph = inference_graph(model, get_spec(architecture).inference_heads)
    card = make_card(graph, architecture, f"{name}_{spec.suffix}", precision, card_fields, contract)
    calibration = representative_dataset(representative_data, card.input) if spec.needs_data else None
    flatbuffer = to_tflite(graph, precision, calibration)
    if latency_runs:
        card = dataclasses.replace(card, latency_ms={LATENCY_KEY: round(measure_latency(flatbuffer, latency_runs), 3)})
    flatbuffer = attach_metadata(flatbuffer, card)
    problems = gpu_incompatibilities(flatbuffer)
    if problems:
        raise ValueError(f"{card.name}: the mobile GPU delegate would not run it all: {'; '.join(problems)}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{card.name}.tflite"
    write_files({path: flatbuffer, card_path(path): card.to_json().encode()})
    return path
