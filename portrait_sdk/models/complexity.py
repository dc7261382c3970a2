"""Parameter and multiply-accumulate (MAC) counts of a Keras model.

MACs are counted the way the papers count them: convolutions, depthwise convolutions, transposed convolutions
and dense layers only (batch norm, activations, adds and resizes are free). A conv's count is
``H_out * W_out * K_h * K_w * C_in / groups * C_out``; a transposed conv's is
``H_in * W_in * K_h * K_w * C_in * C_out`` (every input pixel scatters a full kernel).
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras

layers = keras.layers


def _shape(tensor_shape):
    return [int(d) for d in tensor_shape[1:]]


def layer_macs(layer) -> int:
    """MACs of one layer for batch size 1 (0 for layers that are not counted)."""
    if isinstance(layer, keras.Model):
        return count_macs(layer)
    if isinstance(layer, layers.DepthwiseConv2D):
        h, w, _ = _shape(layer.output.shape)
        kh, kw = layer.kernel_size
        return h * w * kh * kw * int(layer.output.shape[-1])
    if isinstance(layer, layers.Conv2DTranspose):
        h, w, c_in = _shape(layer.input.shape)
        kh, kw = layer.kernel_size
        return h * w * kh * kw * c_in * layer.filters
    if isinstance(layer, layers.Conv2D):
        h, w, c_out = _shape(layer.output.shape)
        c_in = int(layer.input.shape[-1])
        kh, kw = layer.kernel_size
        return h * w * kh * kw * (c_in // layer.groups) * c_out
    if isinstance(layer, layers.Dense):
        positions = 1
        for d in layer.output.shape[1:-1]:
            positions *= int(d)
        return positions * int(layer.input.shape[-1]) * layer.units
    return 0


def count_macs(model) -> int:
    """Total MACs of a functional model (nested models included) for one input."""
    return sum(layer_macs(layer) for layer in model.layers)


def count_params(model) -> int:
    """Trainable parameters (conv/dense weights and biases, BN gamma/beta, PReLU alpha), as the papers count."""
    return int(sum(keras.backend.count_params(w) for w in model.trainable_weights))
