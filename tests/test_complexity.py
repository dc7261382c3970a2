"""The MAC counter against counts done by hand."""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.complexity import count_macs, count_params

layers = keras.layers


def _model(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def test_conv_macs_by_hand():
    # 3x3 conv, 8 -> 16 channels, stride 2 on 32x32: output 16x16; 16*16 positions * 9 taps * 8 in * 16 out.
    model = _model(layers.Conv2D(16, 3, strides=2, padding="same"), (32, 32, 8))
    assert count_macs(model) == 16 * 16 * 9 * 8 * 16 == 294_912
    assert count_params(model) == 9 * 8 * 16 + 16


def test_depthwise_macs_by_hand():
    # depthwise 5x5 with dilation 2 on 10x10x6: every output pixel, every channel, 25 taps.
    model = _model(layers.DepthwiseConv2D(5, dilation_rate=2, padding="same"), (10, 10, 6))
    assert count_macs(model) == 10 * 10 * 25 * 6 == 15_000


def test_transposed_conv_macs_by_hand():
    # 4x4 stride-2 transposed conv 3 -> 5 on 7x7: every input pixel scatters a 4x4x5 kernel per input channel.
    model = _model(layers.Conv2DTranspose(5, 4, strides=2, padding="same"), (7, 7, 3))
    assert count_macs(model) == 7 * 7 * 16 * 3 * 5 == 11_760


def test_grouped_conv_dense_and_free_layers():
    inputs = keras.Input((4, 4, 8))
    x = layers.Conv2D(8, 1, groups=2, use_bias=False)(inputs)  # 16 px * (8/2) in * 8 out = 512
    x = layers.BatchNormalization()(x)  # free
    x = layers.ReLU()(x)  # free
    x = layers.GlobalAveragePooling2D()(x)  # free
    x = layers.Dense(3)(x)  # 8 * 3 = 24
    assert count_macs(keras.Model(inputs, x)) == 512 + 24


def test_nested_models_are_counted():
    inner = _model(layers.Conv2D(2, 1, use_bias=False), (4, 4, 3))  # 16 * 3 * 2 = 96
    inputs = keras.Input((4, 4, 3))
    outer = keras.Model(inputs, layers.Conv2D(1, 1)(inner(inputs)))  # + 16 * 2 * 1 = 32
    assert count_macs(outer) == 128
