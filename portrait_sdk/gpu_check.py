"""Prove that the mobile GPU delegate runs a ``.tflite`` file whole, and that it computes what the CPU computes.

``tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)`` calls models with unsupported ops compatible, and
``gpu_ops.gpu_incompatibilities`` is only a list we maintain. This check asks LiteRT itself: ai-edge-litert's
``CompiledModel`` with ``HardwareAccelerator.GPU`` alone (no CPU fallback) builds the model on LiteRT's WebGPU
accelerator (the ml_drift GPU delegate of the phones), and refuses, listing the ops, when any op would have to run
on the CPU. On a machine without a GPU, Vulkan runs on SwiftShader, the software driver of Debian's ``chromium``.
The GPU result on a random input is then compared with the CPU result (the ``Interpreter``, XNNPACK).

The GPU part runs in a child process because
  - LiteRT names the unsupported ops only in native log lines on stderr (the Python error just says "Some ops are
    not accelerated"), which a child's captured stderr gives back cleanly;
  - the Vulkan loader is found through ``LD_LIBRARY_PATH``, which is read once at process start: Debian's chromium
    ships its own ``libvulkan.so.1`` beside the SwiftShader driver, and ``libvulkan1`` is usually not installed;
  - a failed or crashing GPU start cannot leave this process with a broken LiteRT GPU environment.
No TensorFlow import: this is inference-side code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from portrait_sdk.quiet import native_info_dropped

SWIFTSHADER_ICD = Path("/usr/lib/chromium/vk_swiftshader_icd.json")
# Largest |GPU - CPU| output difference allowed, as a fraction of max(1, largest |CPU output|), by the file's
# arithmetic. The GPU runs an int8 file on dequantized weights in floating point, the CPU in integer arithmetic: they
# differ by a few percent of the output range (released PortraitNet int8: 0.082 on its mask probabilities, the
# largest measured). Every released file outputs the mask alone (a probability), so the int8 rule is what that
# needs; float32 and float16 files differ by rounding only.
TOLERANCE = {"float": 2e-3, "int8": 0.1}
TOLERANCE_HELP = (f"largest |GPU - CPU| output difference allowed (default: {TOLERANCE['float']:g} x max(1, largest "
                  f"output) for float32 / float16 files, {TOLERANCE['int8']:g} x max(1, largest output) for files "
                  "with int8 tensors)")
NOT_ACCELERATED = "Some ops are not accelerated"  # LiteRT's error when GPU alone cannot run every op
_UNSUPPORTED_HEADER = "Following operations are not supported by GPU delegate:"
_PARTITION_LINE = re.compile(r"(\d+|No) operations will run on the GPU, and .* on the CPU")
_ADAPTER_LINE = re.compile(r"Selected adapter: (.*)")
_NO_GPU_SIGNS = ("No adapters found", "Failed to initialize WebGPU environment", "Couldn't load Vulkan")


class GpuUnavailableError(RuntimeError):
    """LiteRT's GPU accelerator could not start: no Vulkan driver (install chromium for SwiftShader)."""


@dataclasses.dataclass
class GpuReport:
    """What LiteRT's GPU accelerator made of one model.

    ``unsupported`` holds LiteRT's own lines, ``"OP: reason. node"``; ``max_abs_diff`` (over all outputs) and
    ``output_scale`` (the largest |CPU output|, to judge the difference by: untrained models can output ~1e-6) are
    NaN when the GPU refused the model. ``precision`` ("float" or "int8", see ``file_precision``) picks the
    ``tolerance`` rule unless the caller gave one. ``partition`` is LiteRT's "N operations will run on the GPU, ..."
    line; ``gpu_seconds`` the child's wall time (start, shader compilation, one run).
    """

    path: str
    fully_accelerated: bool
    unsupported: list[str]
    max_abs_diff: float
    tolerance: float
    precision: str
    output_scale: float = math.nan
    adapter: str = ""
    partition: str = ""
    error: str = ""
    gpu_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.fully_accelerated and self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        if self.fully_accelerated:
            verdict = "PASS" if self.passed else f"FAIL (GPU and CPU differ by more than {self.tolerance:.3g})"
            return (f"{self.path}: {verdict}: fully on the GPU, max |GPU - CPU| = {self.max_abs_diff:.3g} "
                    f"(outputs up to {self.output_scale:.3g}, {self.precision} file: allowed {self.tolerance:.3g}) "
                    f"[{self.adapter}, {self.gpu_seconds:.1f}s]")
        lines = [f"{self.path}: FAIL: not fully on the GPU ({self.partition or self.error})"]
        return "\n  ".join(lines + self.unsupported)


def gpu_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the GPU child: SwiftShader as the Vulkan driver unless ``VK_ICD_FILENAMES`` names one.

    With SwiftShader, chromium's folder joins ``LD_LIBRARY_PATH`` for its Vulkan loader. Raises
    GpuUnavailableError, saying what to install, when there is no driver.
    """
    env = dict(os.environ if base is None else base)
    if not env.get("VK_ICD_FILENAMES"):
        if not SWIFTSHADER_ICD.is_file():
            raise GpuUnavailableError(
                f"no Vulkan driver for LiteRT's GPU accelerator: {SWIFTSHADER_ICD} is missing; install the "
                "SwiftShader software driver with `apt-get install chromium` (Debian), or set VK_ICD_FILENAMES to "
                "your GPU's Vulkan ICD json")
        env["VK_ICD_FILENAMES"] = str(SWIFTSHADER_ICD)
    if env["VK_ICD_FILENAMES"] == str(SWIFTSHADER_ICD):
        library_dirs = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(library_dirs + [str(SWIFTSHADER_ICD.parent)])
    return env


def _cpu_interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    try:
        with native_info_dropped():
            interpreter = Interpreter(model_path=str(path))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: LiteRT cannot load it as a TFLite model: {error}") from error
    return interpreter


def file_precision(interpreter) -> str:
    """"int8" when the file holds int8 / uint8 tensors (int8, dynamic-range and QAT exports), else "float"."""
    return "int8" if any(np.dtype(d["dtype"]) in (np.int8, np.uint8) for d in interpreter.get_tensor_details()) \
        else "float"


def tolerance(precision: str, output_scale: float) -> float:
    """The largest |GPU - CPU| difference allowed for a ``precision`` file whose outputs reach ``output_scale``."""
    return TOLERANCE[precision] * max(1.0, output_scale)


def _random_inputs(interpreter, seed: int = 0) -> dict[str, np.ndarray]:
    """One random array per model input, keyed by tensor index: uniform in [0, 1) for floats, full range for ints."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for detail in interpreter.get_input_details():
        shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            inputs[str(detail["index"])] = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        else:
            inputs[str(detail["index"])] = rng.uniform(0, 1, shape).astype(dtype)
    return inputs


def _run_on_cpu(interpreter, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs keyed by tensor index, as the GPU child keys them."""
    for index, value in inputs.items():
        interpreter.set_tensor(int(index), value)
    interpreter.invoke()
    return {str(d["index"]): interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def _parse_log(stderr: str) -> tuple[list[str], str, str]:
    """(unsupported-op lines, partition line, adapter) from the child's LiteRT log."""
    lines = [line.strip() for line in stderr.splitlines()]
    unsupported = []
    if _UNSUPPORTED_HEADER in stderr:
        start = next(i for i, line in enumerate(lines) if line.endswith(_UNSUPPORTED_HEADER)) + 1
        for line in lines[start:]:
            if not re.match(r"[A-Za-z0-9_]+: ", line) or _PARTITION_LINE.search(line):
                break
            unsupported.append(line)
    partition = next((m.group(0) for m in map(_PARTITION_LINE.search, lines) if m), "")
    adapter = next((m.group(1).strip() for m in map(_ADAPTER_LINE.search, lines) if m), "")
    return unsupported, partition, adapter


def check_gpu(path: str | os.PathLike, atol: float | None = None, seed: int = 0,
              timeout: float = 600) -> GpuReport:
    """Run ``path`` on LiteRT's GPU accelerator alone and on the CPU, on the same random input, and compare.

    The difference passes up to ``atol``, by default the file's precision rule (``tolerance``).

    Raises FileNotFoundError / ValueError for a missing or unreadable model, GpuUnavailableError when the GPU
    accelerator cannot start (no Vulkan driver).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    interpreter = _cpu_interpreter(path)  # a bad file is named before any GPU driver is looked for
    env = gpu_environment()
    precision = file_precision(interpreter)
    inputs = _random_inputs(interpreter, seed)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        inputs_file, outputs_file = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        result_file = Path(tmp) / "result.json"
        np.savez(inputs_file, **inputs)
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-m", "portrait_sdk.gpu_check", str(path), str(inputs_file), str(outputs_file),
             str(result_file)],
            env=env, capture_output=True, text=True, timeout=timeout)
        gpu_seconds = time.perf_counter() - started
        result = json.loads(result_file.read_text()) if result_file.is_file() else None
        gpu_outputs = dict(np.load(outputs_file)) if outputs_file.is_file() else {}
    unsupported, partition, adapter = _parse_log(child.stderr)
    error = (result or {}).get("error", "")
    if result is None or (error and NOT_ACCELERATED not in error):
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        if any(sign in child.stderr for sign in _NO_GPU_SIGNS):
            raise GpuUnavailableError(
                f"LiteRT's GPU accelerator found no usable Vulkan device (VK_ICD_FILENAMES="
                f"{env.get('VK_ICD_FILENAMES')}); `apt-get install chromium` provides SwiftShader at "
                f"{SWIFTSHADER_ICD}. LiteRT said:\n{tail}")
        raise RuntimeError(f"{path}: the GPU run failed (exit code {child.returncode}): {error or tail}")
    fully = bool(result["fully_accelerated"])
    max_abs_diff = output_scale = math.nan
    if fully:
        cpu_outputs = {k: v.astype(np.float64) for k, v in _run_on_cpu(interpreter, inputs).items()}
        max_abs_diff = max(float(np.max(np.abs(gpu_outputs[k] - v))) for k, v in cpu_outputs.items())
        output_scale = max(float(np.max(np.abs(v))) for v in cpu_outputs.values())
    allowed = tolerance(precision, output_scale) if atol is None else atol
    return GpuReport(str(path), fully, unsupported, max_abs_diff, allowed, precision, output_scale, adapter,
                     partition, error, gpu_seconds)


def _run_gpu_child(model: str, inputs_file: str, outputs_file: str, result_file: str) -> None:
    """The child's side: build the model with HardwareAccelerator.GPU only, run it, save outputs by tensor index."""
    from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator

    try:
        compiled = CompiledModel.from_file(model, hardware_accel=HardwareAccelerator.GPU)
    except RuntimeError as error:
        Path(result_file).write_text(json.dumps({"fully_accelerated": False, "error": str(error)}))
        return
    signature = next(iter(compiled.get_signature_list()))
    input_details = compiled.get_input_tensor_details(signature)
    output_details = compiled.get_output_tensor_details(signature)
    inputs = np.load(inputs_file)
    input_buffers = {}
    for name, detail in input_details.items():
        input_buffers[name] = compiled.create_input_buffer_by_name(signature, name)
        input_buffers[name].write(inputs[str(detail["index"])])
    output_buffers = {name: compiled.create_output_buffer_by_name(signature, name) for name in output_details}
    compiled.run_by_name(signature, input_buffers, output_buffers)
    outputs = {str(d["index"]): output_buffers[name].read(int(np.prod(d["shape"])), d["dtype"]).reshape(d["shape"])
               for name, d in output_details.items()}
    np.savez(outputs_file, **outputs)
    Path(result_file).write_text(json.dumps({"fully_accelerated": compiled.is_fully_accelerated(), "error": ""}))


if __name__ == "__main__":
    _run_gpu_child(*sys.argv[1:5])
