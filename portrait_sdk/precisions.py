"""The export formats: one table, ``PRECISIONS``, of names (CLI / API / model cards) and file-name suffixes.

Read it rather than repeating its names. Standard library only, so that the TF-free side (the CLI's help, the
inference tools) can name the formats without importing the exporter (``portrait_sdk.export``, TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """One export format: its name (CLI / API), the file-name suffix, and what it needs."""

    name: str
    suffix: str
    summary: str
    needs_data: bool = False  # representative images to calibrate activation ranges
    needs_qat: bool = False  # a model wrapped by tfmot's quantize_model (portrait_sdk.quantize)


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("float32", "fp32", "float32 weights and activations: the reference the others are compared with"),
    Precision("float16", "fp16", "float16 weights (half the size), dequantized on the CPU; what MediaPipe's "
                                 "GPU selfie model ships"),
    Precision("dynamic_int8", "dyn_int8", "int8 weights, float activations (dynamic-range quantization): a quarter "
                                          "of the size, no calibration data"),
    Precision("int8", "int8", "full-integer post-training quantization calibrated on representative images; "
                              "float32 input and output", needs_data=True),
    Precision("qat_int8", "qat_int8", "int8 from quantization-aware training (portrait_sdk.quantize); float32 "
                                      "input and output", needs_qat=True),
)}


def precision_spec(name: str) -> Precision:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid choices: {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
