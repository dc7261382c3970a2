"""Weight import from published TFLite files: read a file's weight tensors, dequantize, assign them to Keras layers.

Nothing on our machines can download ImageNet checkpoints, but published ``.tflite`` files carry trained weights:
MediaPipe's selfie and hair segmenters (float16 / float32), ImageNet and PASCAL MobileNetV2s (int8). This module
reads them without TensorFlow (``ai_edge_litert``'s interpreter exposes every tensor and its quantization):

- ``read_layers(path)`` lists the file's weighted ops in graph order (conv, depthwise, transposed conv -- the
  builtin TRANSPOSE_CONV and MediaPipe's custom ``Convolution2DTransposeBias`` --, fully connected, PReLU) with
  their weights dequantized (float16 casts; int8 / uint8 ``(q - zero_point) * scale``, per tensor or per channel)
  and already laid out as Keras expects them. A file with a quantized input (ImageNet's x / 127.5 - 1) has that
  range folded into its first convolution, so every imported model takes [0, 1] pixels as the zoo's do.
- ``assign(model, layers, names)`` puts them into a Keras model by an explicit mapping (Keras layer names in the
  file's order, or (Keras name, file layer name) pairs), checking every shape before anything is written; the first
  mismatch raises ``WeightImportError`` naming both layers and both shapes.
- Batch norm is folded into the convolutions of such files. A Keras conv followed by batch norm gets the kernel,
  and the BN becomes the identity with the file's bias as beta (``assign`` returns those BN layers).
  ``reestimate_batch_norm`` then measures each such BN's input statistics on training images and rewrites it so
  that inference is unchanged while training-mode BN (batch statistics) sees what it expects: without that, the
  first training steps normalise the imported features away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "Convolution2DTransposeBias", "FULLY_CONNECTED",
              "PRELU")


class WeightImportError(ValueError):
    """A file whose weights do not fit the model, with the first mismatching layer and both shapes."""


@dataclass(frozen=True)
class TFLiteLayer:
    """One weighted op of a ``.tflite`` file, its weights dequantized and in Keras layout."""

    name: str  # the op's output tensor name (e.g. "conv2d_3"; the first of a fused op's names)
    op: str
    weights: tuple[np.ndarray, ...]  # (kernel, bias) or (kernel,) or (alpha,)
    output_tensor: int  # index of the op's output tensor (to compare activations)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(w.shape for w in self.weights)


def _dequantize(interpreter, detail: dict) -> np.ndarray:
    value = interpreter.get_tensor(detail["index"])
    if value.dtype in (np.float32, np.float16):
        return value.astype(np.float32)
    q = detail["quantization_parameters"]
    scales, zeros = np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"], np.float32)
    if scales.size == 0:
        raise WeightImportError(f"tensor {detail['name']!r} is {value.dtype} without quantization parameters")
    if scales.size > 1:  # per channel, along quantized_dimension
        shape = [1] * value.ndim
        shape[q["quantized_dimension"]] = scales.size
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return (value.astype(np.float32) - zeros) * scales


def _input_transform(detail: dict) -> tuple[float, float]:
    """(scale, offset) such that the file's real input is scale * x + offset for our input x = pixel / 255.

    A quantized (uint8 / int8) input states its range: real = (q - zero_point) * q_scale with q the pixel (uint8)
    or the pixel - 128 (int8), e.g. ImageNet MobileNetV2's x / 127.5 - 1. A float input is taken to be [0, 1]
    pixels, as MediaPipe's models and ours are fed."""
    q_scale, zero = detail["quantization"]
    if detail["dtype"] not in (np.uint8, np.int8) or not q_scale:
        return 1.0, 0.0
    shift = 128 if detail["dtype"] == np.int8 else 0
    return 255.0 * q_scale, -(shift + zero) * q_scale


def _keras_layout(op: str, kernel: np.ndarray) -> np.ndarray:
    """TFLite weight layout -> Keras'."""
    if op == "CONV_2D":  # [O, H, W, I] -> [H, W, I, O]
        return kernel.transpose(1, 2, 3, 0)
    if op == "DEPTHWISE_CONV_2D":  # [1, H, W, C * M] -> [H, W, C, M] (M = 1 in every file we read)
        return kernel.reshape(kernel.shape[1], kernel.shape[2], -1, 1)
    if op in ("TRANSPOSE_CONV", "Convolution2DTransposeBias"):  # [O, H, W, I] -> [H, W, O, I]
        return kernel.transpose(1, 2, 0, 3)
    if op == "FULLY_CONNECTED":  # [O, I] -> [I, O]
        return kernel.T
    if op == "PRELU":  # [C] or [1, 1, C] -> [1, 1, C] (alpha shared over H and W)
        return kernel.reshape(1, 1, -1)
    raise ValueError(op)


def _open(path: str | os.PathLike):
    from ai_edge_litert.interpreter import Interpreter

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .tflite file")
    try:
        interpreter = Interpreter(model_path=str(path))
    except ValueError as error:
        raise WeightImportError(f"{path}: not a readable .tflite file ({error})") from None
    interpreter.allocate_tensors()
    return interpreter


def read_layers(path: str | os.PathLike) -> list[TFLiteLayer]:
    """The weighted ops of a ``.tflite`` file in graph order, weights dequantized, in Keras layout."""
    interpreter = _open(path)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    dequantized_from = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}

    def constant(index: int) -> np.ndarray:
        return _dequantize(interpreter, details[dequantized_from.get(index, index)])

    produced = {int(o) for op in ops for o in op["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    consumers: dict[int, list[dict]] = {}
    for op in ops:
        for i in op["inputs"]:
            consumers.setdefault(int(i), []).append(op)

    def bias_add(output: int) -> tuple[int, int] | None:
        """(constant, ADD's output) when ``output`` only feeds an ADD of a constant: the converter writes a
        TRANSPOSE_CONV's bias that way."""
        users = consumers.get(output, [])
        if len(users) != 1 or users[0]["op_name"] != "ADD":
            return None
        (other,) = [int(i) for i in users[0]["inputs"] if int(i) != output] or [None]
        if other is None or other in graph_inputs or (other in produced and other not in dequantized_from):
            return None
        return other, int(users[0]["outputs"][0])

    scale, offset = _input_transform(interpreter.get_input_details()[0])
    quantized_input = {int(op["outputs"][0]) for op in ops if op["op_name"] == "QUANTIZE"
                       and int(op["inputs"][0]) in graph_inputs}
    layers = []
    for op in ops:
        name = op["op_name"]
        if name not in WEIGHT_OPS:
            continue
        inputs = [int(i) for i in op["inputs"]]
        output = int(op["outputs"][0])
        if name == "TRANSPOSE_CONV":  # (output_shape, weights, input[, bias])
            weight_inputs = [inputs[1]] + ([inputs[3]] if len(inputs) > 3 and inputs[3] >= 0 else [])
            if len(weight_inputs) == 1 and (added := bias_add(output)) is not None:
                weight_inputs.append(added[0])
                output = added[1]
        else:  # (input, weights[, bias])
            weight_inputs = [i for i in inputs[1:] if i >= 0]
        kernel, *rest = (constant(i) for i in weight_inputs)
        if (scale, offset) != (1.0, 0.0) and inputs[0] in graph_inputs | quantized_input and name == "CONV_2D":
            # the file's real input is scale * x + offset for our x in [0, 1]: fold that into the first conv
            bias = rest[0] if rest else np.zeros(kernel.shape[0], np.float32)
            rest = [bias + offset * kernel.sum(axis=(1, 2, 3))]
            kernel = kernel * scale
            scale, offset = 1.0, 0.0
        layers.append(TFLiteLayer(name=details[output]["name"].split(";")[0], op=name,
                                  weights=(_keras_layout(name, kernel), *rest), output_tensor=output))
    if not layers:
        raise WeightImportError(f"{path}: no weighted ops ({', '.join(WEIGHT_OPS)}) in this file")
    return layers


def _following_batch_norm(layer):
    """The BatchNormalization layer that consumes ``layer``'s output directly, if any."""
    consumers = [node.outbound_layer for node in layer._outbound_nodes]
    if len(consumers) == 1 and type(consumers[0]).__name__ == "BatchNormalization":
        return consumers[0]
    return None


def _pairs(model, file_layers: Sequence[TFLiteLayer], names) -> list[tuple[object, TFLiteLayer]]:
    """(Keras layer, file layer) for names in file order, or (Keras name, file layer name or index) pairs."""
    by_name = {layer.name: layer for layer in file_layers}
    pairs = []
    for i, item in enumerate(names):
        keras_name, file_name = item if isinstance(item, tuple) else (item, None)
        if file_name is None:
            if i >= len(file_layers):
                raise WeightImportError(f"the mapping names {len(list(names))} Keras layers but the file has only "
                                        f"{len(file_layers)} weighted layers (first unmatched: {keras_name!r})")
            source = file_layers[i]
        elif isinstance(file_name, int) and 0 <= file_name < len(file_layers):
            source = file_layers[file_name]
        elif file_name in by_name:
            source = by_name[file_name]
        else:
            raise WeightImportError(f"the file has no layer {file_name!r} (mapped to {keras_name!r})")
        try:
            pairs.append((model.get_layer(keras_name), source))
        except ValueError:
            raise WeightImportError(f"model {model.name!r} has no layer {keras_name!r}") from None
    return pairs


def _target_shapes(layer, bn) -> tuple[tuple[int, ...], ...]:
    shapes = tuple(tuple(w.shape) for w in layer.weights)
    return shapes + ((int(layer.output.shape[-1]),),) if bn is not None and len(shapes) == 1 else shapes


def assign(model, file_layers: Sequence[TFLiteLayer], names: Iterable[str | tuple[str, str]],
           where: str = "the file") -> list:
    """Copy ``file_layers`` into ``model``'s layers named by ``names`` (in file order, or explicit pairs).

    A Keras layer without a bias that feeds a BatchNormalization takes the kernel, and the BN becomes the
    identity with the file's bias as beta (gamma 1, mean 0, variance 1 - epsilon). Every shape is checked before
    any weight is written. Returns the BN layers set to the identity (for ``reestimate_batch_norm`` or to be
    frozen for a warm-up)."""
    pairs = _pairs(model, file_layers, list(names))
    plan = []
    for layer, source in pairs:
        if type(layer).__name__ == "Dense" and source.op == "CONV_2D" and source.shapes[0][:2] == (1, 1):
            source = TFLiteLayer(source.name, "FULLY_CONNECTED",  # a classifier written as a 1x1 convolution
                                 (source.weights[0][0, 0], *source.weights[1:]), source.output_tensor)
        if len(source.weights) == 1 and len(layer.weights) == 2 and source.op != "PRELU":
            source = TFLiteLayer(source.name, source.op,  # the converter drops an all-zero bias
                                 (source.weights[0], np.zeros(layer.weights[1].shape, np.float32)),
                                 source.output_tensor)
        bn = _following_batch_norm(layer) if len(layer.weights) == 1 and len(source.weights) == 2 else None
        expected = _target_shapes(layer, bn)
        if expected != source.shapes:
            raise WeightImportError(
                f"{where}: layer {source.name!r} ({source.op}) does not fit Keras layer {layer.name!r}: file shapes "
                f"{list(source.shapes)}, model shapes {list(expected)}")
        plan.append((layer, source, bn))
    folded = []
    for layer, source, bn in plan:
        layer.set_weights([source.weights[0]] if bn is not None else list(source.weights))
        if bn is not None:
            channels = source.weights[1].shape[0]
            bn.set_weights([np.ones(channels, np.float32), source.weights[1], np.zeros(channels, np.float32),
                            np.full(channels, 1.0 - bn.epsilon, np.float32)])
            folded.append(bn)
    return folded


def load_into(model, path: str | os.PathLike, names: Iterable[str | tuple[str, str]]) -> list:
    """``assign`` the weights of the ``.tflite`` file at ``path``; errors name the file."""
    return assign(model, read_layers(path), names, where=str(path))


def load_pretrained(model, path: str | os.PathLike, architecture: str | None = None) -> list:
    """``load_into`` by the mapping of the model's registered architecture (its spec's ``pretrained_layers``),
    e.g. MediaPipe's selfie or hair ``.tflite`` into ``build_model("selfie")`` / ``("hair_segmenter", ...)``."""
    from portrait_sdk.models import get_spec

    spec = get_spec(architecture or model.name)
    if spec.pretrained_layers is None:
        raise WeightImportError(f"{spec.name} has no mapping from a .tflite file's layers")
    return load_into(model, path, spec.pretrained_layers(model))


def reestimate_batch_norm(model, batch_norms: Sequence, images: Iterable[np.ndarray]) -> None:
    """Measure the input statistics of identity ``batch_norms`` (from ``assign``) on ``images`` (batches of model
    inputs) and rewrite each BN so that its inference output is unchanged (gamma = sqrt(var + eps), beta = bias +
    mean, moving statistics = the measured ones): training-mode BN, which normalises by the batch statistics, then
    starts from the imported function instead of destroying it."""
    from portrait_sdk.keras_env import keras

    if not batch_norms:
        return
    probe = keras.Model(model.inputs, [bn.input for bn in batch_norms])
    sums = sq = None
    count = 0
    for batch in images:
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        flat = [np.asarray(o, np.float64).reshape(-1, o.shape[-1]) for o in outputs]
        sums = [f.sum(0) for f in flat] if sums is None else [s + f.sum(0) for s, f in zip(sums, flat)]
        sq = [(f ** 2).sum(0) for f in flat] if sq is None else [s + (f ** 2).sum(0) for s, f in zip(sq, flat)]
        count += flat[0].shape[0]
    if not count:
        raise ValueError("reestimate_batch_norm needs at least one batch of images")
    for bn, total, total_sq in zip(batch_norms, sums, sq):
        mean = total / count
        var = np.maximum(total_sq / count - mean ** 2, 0.0)
        gamma, beta, _, _ = bn.get_weights()
        std = np.sqrt(var + bn.epsilon)
        bn.set_weights([(gamma * std).astype(np.float32), (beta + gamma * mean).astype(np.float32),
                        mean.astype(np.float32), var.astype(np.float32)])
