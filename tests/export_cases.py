"""Two tiny models exported at every precision once per test session, for test_export and test_metadata.

- "sigmoid": named extremec3net (a portrait model with 1 output channel), built with a training-only "coarse" head
  that the export must strip; int8 calibrated from a folder of images.
- "softmax": named portraitnet, 2-class logits; int8 calibrated from arrays.

The zoo's own architectures take minutes to convert on a loaded 2-core machine (tests/test_models.py converts
them once); these take seconds. Beside each ``<case>_<suffix>.tflite`` the folder holds the test input
(``<case>_input.npy``, RGB / 255) and the probabilities the Keras model gives for it (``..._keras.npy``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = 32
CASES = {"sigmoid": ("extremec3net", 1), "softmax": ("portraitnet", 2)}
CARD_FIELDS = {"license": "Apache-2.0 (test)", "training_data": "random pixels", "metrics": {"miou": 0.5}}


def tiny_model(name: str, classes: int, training_heads: bool = False, seed: int = 0):
    """conv-BN-ReLU (stride 2), conv, depthwise, bilinear x2, 1x1 logits: the zoo's op mix in ~1.5 K weights."""
    from portrait_sdk.keras_env import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)  # >= 1024 weights: dynamic_int8 acts
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    head = keras.layers.Conv2D(classes, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=12.0),
                               name="mask")
    mask = head(x)
    outputs = {"mask": mask, "coarse": keras.layers.Conv2D(1, 1, name="coarse")(x)} if training_heads else mask
    model = keras.Model(inputs, outputs, name=name)
    # large logits centred on 0 for noise images: probabilities spread over 0..1, so quantization errors show
    noise = np.random.default_rng(seed).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias - keras.Model(inputs, mask)(noise).numpy().mean(axis=(0, 1, 2))])
    return model


def probabilities(model, x: np.ndarray) -> np.ndarray:
    """The mask probabilities of a Keras model: what the exported file must give."""
    out = model(x, training=False)
    logits = np.asarray(out["mask"] if isinstance(out, dict) else out)
    if logits.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def write_images(folder: Path, count: int = 6) -> Path:
    """Random RGB images of another aspect ratio than the model's (the letterbox gets exercised)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    return folder


def _export_all(folder: Path) -> None:
    from portrait_sdk.export import PRECISIONS, export_model
    from portrait_sdk.quantize import quantize_for_training

    rng = np.random.default_rng(2)
    for case, (architecture, classes) in CASES.items():
        float_model = tiny_model(architecture, classes, training_heads=case == "sigmoid")
        qat_model = quantize_for_training(tiny_model(architecture, classes))
        for _ in range(3):  # let the fake-quant ranges follow the data, as QAT fine-tuning does
            qat_model(rng.uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32), training=True)
        calibration = (write_images(folder / "images") if case == "sigmoid" else
                       [rng.uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32) for _ in range(6)])
        x = rng.integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32) / 255.0
        np.save(folder / f"{case}_input.npy", x)
        for precision, spec in PRECISIONS.items():
            model = qat_model if spec.needs_qat else float_model
            path = export_model(model, folder, case, precision, representative_data=calibration,
                                card_fields=CARD_FIELDS, latency_runs=3)
            np.save(path.with_name(f"{path.stem}_keras.npy"), probabilities(model, x))


def exported(tmp_path_factory) -> Path:
    """The session's folder of exports (built by the first test file asking)."""
    folder = tmp_path_factory.getbasetemp() / "tiny_exports"
    if not folder.is_dir():
        building = tmp_path_factory.mktemp("tiny_exports_building")
        _export_all(building)
        building.rename(folder)
    return folder


def export_path(folder: Path, case: str, precision: str) -> Path:
    from portrait_sdk.export import PRECISIONS

    return folder / f"{case}_{PRECISIONS[precision].suffix}.tflite"


def litert_outputs(path: Path, x: np.ndarray) -> list[np.ndarray]:
    """Every output of a .tflite file on ``x``, in file order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.astype(np.float32))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
