"""PortraitNet (Zhang et al., Computers & Graphics 2019): MobileNetV2 encoder, D-block decoder, boundary head.

Decoder as in the official code (dong-x16/PortraitNet): five D-blocks (320->96->32->24->16->8), each followed by
a 4x4 stride-2 transposed conv without bias, initialised to bilinear upsampling; the encoder features at 1/16,
1/8 and 1/4 are *added* before the next D-block (no skip at 1/2). A 3x3 mask head and a 3x3 boundary head
(training only) sit on the full-resolution 8-channel map. With 4 input channels the 4th is the previous frame's
mask (the video variant).
"""

from __future__ import annotations

import numpy as np

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import conv_bn, depthwise_bn, mobilenet_v2_encoder, mobilenet_v2_layer_names
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

DECODER_WIDTHS = (96, 32, 24, 16, 8)


@keras.utils.register_keras_serializable(package="portrait_sdk")
class BilinearUpsampling(keras.initializers.Initializer):
    """Transposed-conv kernel that performs per-channel bilinear upsampling (PortraitNet's deconv init)."""

    def __call__(self, shape, dtype=None, **kwargs):
        kh, kw, out_channels, in_channels = shape
        factor = (kh + 1) // 2
        center = factor - 1 if kh % 2 == 1 else factor - 0.5
        og = np.ogrid[:kh, :kw]
        kernel_2d = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
        weights = np.zeros(shape, dtype="float32")
        for c in range(min(out_channels, in_channels)):
            weights[:, :, c, c] = kernel_2d
        return keras.backend.constant(weights, dtype=dtype)

    def get_config(self):
        return {}


def d_block(x, filters: int, name: str):
    """PortraitNet's ResidualBlock: (dw3x3, 1x1, dw3x3, 1x1-linear) + (1x1 projection if widths differ), ReLU."""
    y = depthwise_bn(x, 3, act="relu", name=f"{name}_dw1")
    y = conv_bn(y, filters, 1, act="relu", name=f"{name}_pw1")
    y = depthwise_bn(y, 3, act="relu", name=f"{name}_dw2")
    y = conv_bn(y, filters, 1, act=None, name=f"{name}_pw2")
    shortcut = x if x.shape[-1] == filters else conv_bn(x, filters, 1, act=None, name=f"{name}_shortcut")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def build(input_shape, training_heads: bool = False, num_classes: int = 2):
    inputs = keras.Input(shape=input_shape, name="image")
    features = mobilenet_v2_encoder(inputs, act="relu", name="enc")
    x = features[32]
    for i, filters in enumerate(DECODER_WIDTHS):
        stride = 32 // 2**i
        if i > 0 and stride in (16, 8, 4):
            x = layers.Add(name=f"skip_{stride}")([features[stride], x])
        x = d_block(x, filters, name=f"dec{i}")
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=BilinearUpsampling(), name=f"dec{i}_up")(x)
    mask = layers.Conv2D(num_classes, 3, padding="same", use_bias=False, name="mask")(x)
    if not training_heads:
        return keras.Model(inputs, mask, name="portraitnet")
    boundary = layers.Conv2D(2, 3, padding="same", use_bias=False, name="boundary")(x)
    return keras.Model(inputs, {"mask": mask, "boundary": boundary}, name="portraitnet")


SPEC = register(ModelSpec(
    name="portraitnet",
    task="portrait",
    builder=build,
    description="PortraitNet: MobileNetV2 encoder + D-block decoder with boundary head (optional prior channel)",
    default_input_size=(224, 224),
    output_stride=32,
    input_channels=(3, 4),
    output="2-class logits at input size; softmax channel 1 = person",
    options={"num_classes": ()},
    pretrained_layers=lambda model: mobilenet_v2_layer_names("enc"),  # an ImageNet MobileNetV2 1.0 file
    reference=Reference(params=2_080_000, macs=370_000_000, input_size=(224, 224),
                        source="MODELS.md section 1 (analytic count of dong-x16/PortraitNet)"),
))
