"""MediaPipe hair segmenter (Tkachenka et al., "Real-time Hair Segmentation and Recoloring on Mobile GPUs", 2019).

Layer for layer the network shipped as MediaPipe's ``hair_segmentation.tflite``: an ENet-like encoder-decoder on a
512x512 RGB + previous-frame-mask input (the 4th channel carries the last mask for temporal consistency), PReLU
(per-channel alpha) after every layer but the expansions, and batch norm that the converter folds into the convs.

- Encoder: two 2x2 stride-2 convs (4->8->32, 128^2 at 512), then bottlenecks of 1x1 (2x2 stride 2 when
  downsampling) reduce -> spatial middle -> linear 1x1 expand, added to the shortcut and PReLU'd. Three stages at
  64^2, 32^2 and 16^2; the 16^2 stage cycles dilated 3x3 convs (dilation 2, 4, 8), depthwise 5x5 and separable
  middles, ending with a 4-channel 3x3 block.
- Decoder: three upsampling bottlenecks (1x1 reduce -> 3x3 stride-2 transposed conv -> 1x1 expand, plus a 1x1
  shortcut brought up to size), U-Net concat with the encoder at 32^2 and 64^2, each followed by one bottleneck.
- Head: two 2x2 stride-2 transposed convs, 128^2 -> 256^2 (8 channels) -> 512^2 logits.

MediaPipe's custom ops are swapped for builtin GPU-delegate ops with the same weights and MACs: the argmax-pool
shortcut becomes MAX_POOL_2D, max-unpooling with those indices becomes bilinear upsampling (RESIZE_BILINEAR) of the
1x1 shortcut, and Convolution2DTransposeBias becomes TRANSPOSE_CONV.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import activation, conv_bn, depthwise_bn, transpose_conv_bn, upsample
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

# Middles of the 16^2 bottlenecks, repeated twice: "sep" is a pair of depthwise 3x3s, "dN" a full 3x3 conv with
# dilation N, "dw5" a depthwise 5x5 + 1x1.
CONTEXT_PATTERN = ("sep", "d2", "dw5", "d4", "sep", "d8")

# Encoder stages as blocks of (output width, bottleneck width, middle); the first block of a stage halves the
# resolution, and its output is the U-Net skip of that resolution.
ENCODER_STAGES = (
    ((64, 16, "sep"),) * 3,
    ((128, 32, "sep"),) + ((128, 16, "sep"),) * 4,
    ((128, 16, "sep"),) + tuple((128, 8, kind) for kind in CONTEXT_PATTERN * 2) + ((128, 4, "d1"),),
)

# Decoder stages as (output width, bottleneck width, concatenate the encoder skip of the same resolution).
DECODER_STAGES = ((128, 8, True), (64, 4, True), (32, 4, False))

HEAD_WIDTH = 8


def prelu(x, name: str):
    return activation(x, "prelu", name)


def middle(x, kind: str, name: str):
    """Spatial part of a bottleneck at constant width: "sep", "dw5" or "dN" (3x3 conv with dilation N)."""
    width = x.shape[-1]
    if kind == "sep":
        x = depthwise_bn(x, 3, act=None, name=f"{name}_dw1")
        x = conv_bn(x, width, 1, act="prelu", name=f"{name}_pw")
        return depthwise_bn(x, 3, act="prelu", name=f"{name}_dw2")
    if kind == "dw5":
        x = depthwise_bn(x, 5, act=None, name=f"{name}_dw")
        return conv_bn(x, width, 1, act="prelu", name=f"{name}_pw")
    if kind.startswith("d") and kind[1:].isdigit():
        return conv_bn(x, width, 3, dilation_rate=int(kind[1:]), act="prelu", name=f"{name}_conv")
    raise ValueError(f"unknown bottleneck middle {kind!r}; expected 'sep', 'dw5' or 'd<dilation>'")


def bottleneck(x, filters: int, width: int, kind: str, name: str, downsample: bool = False):
    """ENet bottleneck: reduce to ``width``, ``middle``, linear expand to ``filters``, add the shortcut, PReLU.

    Downsampling reduces with a 2x2 stride-2 conv and max-pools the shortcut; the shortcut gets a linear 1x1
    projection whenever the width changes.
    """
    strides = 2 if downsample else 1
    y = conv_bn(x, width, strides, strides=strides, act="prelu", name=f"{name}_reduce")
    y = middle(y, kind, name=f"{name}_mid")
    y = conv_bn(y, filters, 1, act=None, name=f"{name}_expand")
    shortcut = layers.MaxPool2D(2, name=f"{name}_pool")(x) if downsample else x
    if shortcut.shape[-1] != filters:
        shortcut = conv_bn(shortcut, filters, 1, act=None, name=f"{name}_project")
    return prelu(layers.Add(name=f"{name}_add")([y, shortcut]), name)


def upsampling_bottleneck(x, filters: int, width: int, name: str):
    """ENet upsampling bottleneck; the 1x1 shortcut is upsampled bilinearly in place of MediaPipe's unpooling."""
    y = conv_bn(x, width, 1, act="prelu", name=f"{name}_reduce")
    y = transpose_conv_bn(y, width, 3, strides=2, act="prelu", use_bn=True, name=f"{name}_deconv")
    y = conv_bn(y, filters, 1, act=None, name=f"{name}_expand")
    shortcut = conv_bn(x, filters, 1, act=None, name=f"{name}_project")
    shortcut = upsample(shortcut, 2, name=f"{name}_upsample")
    return prelu(layers.Add(name=f"{name}_add")([y, shortcut]), name)


def encoder(x):
    """Stem and bottleneck stages. Returns the 1/32 features and the U-Net skips keyed by output stride."""
    x = conv_bn(x, 8, 2, strides=2, act="prelu", name="stem1")
    x = conv_bn(x, 32, 2, strides=2, act="prelu", name="stem2")
    skips = {}
    stride = 4
    for stage, blocks in enumerate(ENCODER_STAGES):
        stride *= 2
        for i, (filters, width, kind) in enumerate(blocks):
            x = bottleneck(x, filters, width, kind, name=f"enc{stage}_b{i}", downsample=i == 0)
            if i == 0:
                skips[stride] = x
    return x, skips


def decoder(x, skips: dict):
    """Upsampling stages from 1/32 to 1/4, concatenating the encoder skips of the same stride."""
    stride = 32
    for stage, (filters, width, use_skip) in enumerate(DECODER_STAGES):
        stride //= 2
        x = upsampling_bottleneck(x, filters, width, name=f"dec{stage}_up")
        if use_skip:
            x = layers.Concatenate(name=f"dec{stage}_concat")([x, skips[stride]])
        x = bottleneck(x, filters, width, "d1", name=f"dec{stage}_b")
    return x


def build(input_shape, training_heads: bool = False, num_classes: int = 2):
    inputs = keras.Input(shape=input_shape, name="image")
    features, skips = encoder(inputs)
    x = decoder(features, skips)
    x = transpose_conv_bn(x, HEAD_WIDTH, 2, strides=2, act="prelu", use_bn=True, name="head_deconv")
    mask = layers.Conv2DTranspose(num_classes, 2, strides=2, padding="same", name="mask")(x)
    if not training_heads:
        return keras.Model(inputs, mask, name="hair_segmenter")
    aux = layers.Conv2D(num_classes, 1, name="aux")(features)
    return keras.Model(inputs, {"mask": mask, "aux": aux}, name="hair_segmenter")


SPEC = register(ModelSpec(
    name="hair_segmenter",
    task="hair",
    builder=build,
    description="MediaPipe hair segmenter: ENet-style encoder-decoder with U-Net skips on RGB + previous mask",
    default_input_size=(512, 512),
    # The encoder reaches 1/32, but LiteRT's GPU TRANSPOSE_CONV shifts a 3x3 stride-2 'same' upsampling of an
    # odd-sized map by one pixel (tests/test_gpu_check.py keeps a canary): sizes that are multiples of 64 keep
    # every decoder input even.
    output_stride=64,
    input_channels=(4, 3),
    output="2-class logits at input size; softmax channel 1 = hair",
    options={"num_classes": ()},
    reference=Reference(params=181_500, macs=254_000_000, input_size=(512, 512),
                        source="MODELS.md section 4 (MediaPipe hair_segmentation.tflite)"),
))
