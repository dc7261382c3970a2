"""Temperature calibration of a warm start's mask logits, before fine-tuning it.

MediaPipe's selfie segmenter is trained to near-binary output: on portrait/train its logits have a median |z| of
about 100 (5 % of pixels above 300). Cross-entropy on such logits has no gradient on the pixels it already gets
right (the sigmoid is saturated) and a full-size one on each wrong pixel, whose loss is hundreds of nats: the
first fine-tuning steps only push errors and nothing holds the rest in place, so the model forgets (val IoU 0.91
-> 0.87 after one epoch of ``training/selfie.toml``). Dividing the logits by the temperature T that minimises the
cross-entropy on training images (Guo et al. 2017, "On Calibration of Modern Neural Networks"; T is about 20 there)
keeps every decision (the sign of a logit does not change) and gives the loss a gradient everywhere.

The scaling is folded into the output layer (kernel and bias / T), so the model keeps its graph and the file it
exports is unchanged in shape.
"""

from __future__ import annotations

import math

import numpy as np

from portrait_sdk.keras_env import keras
from portrait_sdk.objectives import as_dict, resize_labels

LINEAR_OUTPUT_LAYERS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)
SEARCH_RANGE = (1e-2, 1e4)  # temperatures tried (log-spaced golden-section search)


def two_class_logit(logits: np.ndarray) -> np.ndarray:
    """[..., 1] sigmoid logits or [..., 2] softmax logits -> the foreground logit z (sigmoid(z) = p)."""
    return logits[..., 0] if logits.shape[-1] == 1 else logits[..., 1] - logits[..., 0]


def cross_entropy_at(z: np.ndarray, target: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of sigmoid(z / T) against soft targets in [0, 1], computed stably."""
    s = z / temperature
    return float(np.mean(np.maximum(s, 0) - s * target + np.log1p(np.exp(-np.abs(s)))))


def fit_temperature(z: np.ndarray, target: np.ndarray, iterations: int = 60) -> float:
    """The T in ``SEARCH_RANGE`` minimising ``cross_entropy_at`` (convex in 1 / T: golden section on log T)."""
    lo, hi = (math.log(t) for t in SEARCH_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = (cross_entropy_at(z, target, math.exp(x)) for x in (a, b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = cross_entropy_at(z, target, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = cross_entropy_at(z, target, math.exp(b))
    return math.exp((lo + hi) / 2)


def output_layer(model: keras.Model, output: str = "mask") -> keras.layers.Layer:
    """The layer that computes ``model``'s ``output`` head; it must be linear (the logits are its output)."""
    outputs = model.output if isinstance(model.output, dict) else {"mask": model.output}
    if output not in outputs:
        raise ValueError(f"{model.name}: no output {output!r} to calibrate (outputs: {', '.join(outputs)})")
    layer = outputs[output]._keras_history[0]
    activation = getattr(layer, "activation", None)
    if not isinstance(layer, LINEAR_OUTPUT_LAYERS) or activation not in (None, keras.activations.linear):
        raise ValueError(f"{model.name}: the {output!r} output comes from {layer.name} "
                         f"({type(layer).__name__}, activation {getattr(activation, '__name__', activation)}); "
                         "temperature calibration needs a linear convolution or dense layer there")
    return layer


def calibrate_temperature(model: keras.Model, batches, output: str = "mask") -> float:
    """Fit T on ``batches`` of (features, targets) (the training pipeline's), fold 1 / T into the output layer
    and return T. ``targets["mask"]`` are [B, H, W, 1] probabilities, area-resized to the output's resolution."""
    layer = output_layer(model, output)
    logits, targets = [], []
    for features, batch_targets in batches:
        predicted = as_dict(model(features["image"], training=False))[output].numpy()
        mask = resize_labels(batch_targets["mask"], predicted).numpy()
        logits.append(two_class_logit(predicted).ravel())
        targets.append(np.clip(mask[..., 0], 0.0, 1.0).ravel())
    if not logits:
        raise ValueError("calibrate_temperature: no batches")
    temperature = fit_temperature(np.concatenate(logits), np.concatenate(targets))
    layer.set_weights([w / temperature for w in layer.get_weights()])
    return temperature
