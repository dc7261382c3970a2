"""MMNet (Seo & Shin, 2019): mobile matting with multi-branch dilated linear bottlenecks.

Layout as in the official code (hyperconnect/MMNet, ``matting_nets/mmnet.py``): a 3x3 stride-2 stem, ten
encoder blocks down to 1/16, a decoder that upsamples the 1/16 features to 1/8 and 1/4 while concatenating
processed skips from enc4 (1/8) and enc0 (1/4), two "enhancement" blocks at 1/4 (encoder blocks again), and
dec4, a 1x1 conv to 16 channels followed by two bilinear x2 upsamplings to full resolution. A 1x1 conv with bias
gives 2 logits (softmax channel 1 = alpha); the training-only auxiliary head is the same 1x1 on enc9, at 1/16.

Every conv and depthwise conv is followed by batch norm and ReLU6 unless stated otherwise. Deviations from the
official graph, all for the mobile GPU delegate: dilated depthwise convs use the native ``dilation_rate`` (the
official "quantizable" separable conv leaves SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND in the graph), and the
bilinear resizes use half-pixel centres (TF1's ``resize_bilinear`` used the legacy corner alignment). The
official dropout hook (rate 0 in the release) is left out.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import conv_bn, depthwise_bn, upsample
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

WIDTHS = (0.5, 0.75, 1.0, 1.4)

# Encoder blocks as (expanded width per branch, output width, dilation rates, stride).
ENCODER = ((16, 16, (1, 2, 4, 8), 2), (16, 24, (1, 2, 4, 8), 1), (24, 24, (1, 2, 4, 8), 1),
           (24, 24, (1, 2, 4, 8), 1), (32, 40, (1, 2, 4), 2), (64, 40, (1, 2, 4), 1), (64, 40, (1, 2, 4), 1),
           (64, 40, (1, 2, 4), 1), (80, 80, (1, 2), 2), (120, 80, (1, 2), 1))
# Decoder upsampling blocks as (encoder block whose output is the skip, compressed width, skip width).
DECODER_SKIPS = ((4, 64, 64), (0, 40, 40))
# The two enhancement blocks at 1/4, in the encoder's format.
ENHANCEMENT = ((40, 40, (1, 2, 4), 1), (40, 40, (1, 2, 4), 1))
STEM_WIDTH = 32
DEC4_WIDTH = 16


def scaled_width(channels: int, width: float) -> int:
    """Official MMNet width rule: ``channels * width`` rounded to the nearest multiple of 8, at least 8.

    Unlike MobileNet's ``make_divisible`` there is no "never drop more than 10 %" bump: at width 0.75 the
    24-channel layers become 16 in the official code (``multiply_depth``), and we keep its channel counts.
    """
    return max(8, (round(channels * width) + 4) // 8 * 8)


def multi_branch_block(x, expanded: int, filters: int, rates, strides: int, name: str, act: str | None = None):
    """Multi-branch dilated linear bottleneck: one (1x1 expand, [dw 3x3 stride 2], dw 3x3 dilated) branch per
    rate, branches concatenated, then a 1x1 projection (linear by default; no residual, as in the official code).
    """
    branches = []
    for i, rate in enumerate(rates):
        prefix = f"{name}_b{i}"
        y = conv_bn(x, expanded, 1, act="relu6", name=f"{prefix}_expand")
        if strides > 1:
            y = depthwise_bn(y, 3, strides=strides, act="relu6", name=f"{prefix}_dw_stride")
        branches.append(depthwise_bn(y, 3, dilation_rate=rate, act="relu6", name=f"{prefix}_dw_r{rate}"))
    y = layers.Concatenate(name=f"{name}_concat")(branches) if len(branches) > 1 else branches[0]
    return conv_bn(y, filters, 1, act=act, name=f"{name}_project")


def decoder_block(x, skip, compressed: int, skip_filters: int, name: str):
    """1x1 compression, bilinear x2, then concatenation with the skip after a dw 3x3 + 1x1 on it."""
    x = conv_bn(x, compressed, 1, act="relu6", name=f"{name}_compress")
    x = upsample(x, 2, name=f"{name}_up")
    skip = depthwise_bn(skip, 3, act="relu6", name=f"{name}_skip_dw")
    skip = conv_bn(skip, skip_filters, 1, act="relu6", name=f"{name}_skip_pw")
    return layers.Concatenate(name=f"{name}_concat")([x, skip])


def build(input_shape, training_heads: bool = False, width: float = 1.0):
    """MMNet at width multiplier ``width``; returns 2-class logits at input size ("mask"), plus "aux" at 1/16."""
    if width not in WIDTHS:
        raise ValueError(f"mmnet: width must be one of {WIDTHS}, got {width!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn(inputs, scaled_width(STEM_WIDTH, width), 3, strides=2, act="relu6", name="stem")
    encoder = []
    for i, (expanded, filters, rates, strides) in enumerate(ENCODER):
        last = i == len(ENCODER) - 1  # the official encoder ends on a ReLU6 projection
        x = multi_branch_block(x, scaled_width(expanded, width), scaled_width(filters, width), rates, strides,
                               name=f"enc{i}", act="relu6" if last else None)
        encoder.append(x)
    for i, (source, compressed, skip_filters) in enumerate(DECODER_SKIPS):
        x = decoder_block(x, encoder[source], scaled_width(compressed, width), scaled_width(skip_filters, width),
                          name=f"dec{i}")
    for i, (expanded, filters, rates, strides) in enumerate(ENHANCEMENT, start=len(DECODER_SKIPS)):
        x = multi_branch_block(x, scaled_width(expanded, width), scaled_width(filters, width), rates, strides,
                               name=f"dec{i}")
    x = conv_bn(x, scaled_width(DEC4_WIDTH, width), 1, act="relu6", name="dec4_compress")
    # Two x2 steps, as the official dec4 resizes twice (x2 then x4 of its input); one x4 would differ.
    x = upsample(upsample(x, 2, name="dec4_up0"), 2, name="dec4_up1")
    mask = layers.Conv2D(2, 1, name="mask")(x)
    if not training_heads:
        return keras.Model(inputs, mask, name="mmnet")
    aux = layers.Conv2D(2, 1, name="aux")(encoder[-1])
    return keras.Model(inputs, {"mask": mask, "aux": aux}, name="mmnet")


SPEC = register(ModelSpec(
    name="mmnet",
    auxiliary_heads=("aux",),
    task="matting",
    builder=build,
    description="MMNet: multi-branch dilated linear bottlenecks, skip decoder, 1/16 auxiliary head (width option)",
    default_input_size=(256, 256),
    output_stride=16,
    input_channels=(3,),
    output="2-class logits at input size; softmax channel 1 = alpha",
    options={"width": WIDTHS},
    reference=Reference(params=190_000, macs=330_000_000, input_size=(256, 256),
                        source="MODELS.md section 2 (analytic count of hyperconnect/MMNet, width 1.0)"),
))
