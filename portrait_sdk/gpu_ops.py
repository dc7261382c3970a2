"""Which TFLite ops the mobile GPU delegate runs, and a check of a model's op list against them.

The list follows the delegate's documented ops plus those its current model builder handles and the official
GPU models use (HARD_SWISH, MEAN, dilated convs), and the (DE)QUANTIZE ops of float16 / int8 files. Anything
else (SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, TRANSPOSE, custom or Flex ops) splits the graph between CPU and GPU.
No TensorFlow import: the runtime uses this too.
"""

from __future__ import annotations

import os

GPU_DELEGATE_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "EXP",
    "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PAD",
    "PRELU", "QUANTIZE", "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "STRIDED_SLICE", "SUB",
    "TANH", "TRANSPOSE_CONV",
})


def _interpreter(model: bytes | str | os.PathLike):
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model))
    return Interpreter(model_path=os.fspath(model))


def tflite_op_names(model: bytes | str | os.PathLike) -> list[str]:
    """Op names of a .tflite flatbuffer (bytes or path), in graph order."""
    return [op["op_name"] for op in _interpreter(model)._get_ops_details()]


def tensor_ranks(model: bytes | str | os.PathLike) -> dict[str, int]:
    """Rank of every tensor of the model, by name."""
    return {t["name"]: len(t["shape"]) for t in _interpreter(model).get_tensor_details()}


def gpu_incompatibilities(model: bytes | str | os.PathLike) -> list[str]:
    """Reasons the GPU delegate would not run the whole model; empty when it would."""
    problems = [f"op {op} is not on the GPU delegate's list"
                for op in sorted(set(tflite_op_names(model)) - GPU_DELEGATE_OPS)]
    problems += [f"tensor {name!r} has rank {rank} (> 4)" for name, rank in tensor_ranks(model).items() if rank > 4]
    return problems
