"""Nail segmenter (Duke et al., CVPRW 2019, ModiFace): an ICNet-style two-resolution cascade with three heads.

What the paper and its patent give (MODELS.md section 5): a MobileNetV2 encoder; a deep low-resolution branch
and a shallow high-resolution branch whose predictions are fused ICNet style; output heads for fg/bg
segmentation, the per-finger class and the base-to-tip direction field (trained with a Huber loss); inputs up to
640x480. Branch widths, scales and the fusion block are not published, so the layout below is ours:

- Low branch: a MobileNetV2 (``width`` option) on a half-resolution copy of the image (2x2 average pool). Its
  last two stages (160 and 320 channels) run at stride 1 with dilation 2, as in DeepLab's output stride 16, so
  the deepest map is 1/32 of the input and a 480x640 input works (480 = 15 * 32; a full stride-32 MobileNetV2 at
  half resolution would need multiples of 64). Its 1/16 map plays ICNet's middle branch.
- High branch: the MobileNetV2 stem and first three stages on the full-resolution image, ending at 1/8.
- Cascade: two ICNet cascade feature fusions (CFF), 1/32 + 1/16 -> 1/16, then + high branch 1/8 -> 1/8.
- Decoder: two bilinear x2 steps that add the high branch's 1/4 and 1/2 maps, then 1x1 heads at 1/2 and a
  bilinear x2 to the input size: "mask" (nail/background logits), "instance" (background + one class per
  finger) and "direction" (linear 2-D base-to-tip vector field).
- Training heads: "aux_low" and "aux_mid", 2-class classifiers on the upsampled coarse input of each CFF
  (ICNet's cascade label guidance). They stay at 1/16 and 1/8 of the input: compare them with labels
  downsampled to that size.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import (MOBILENET_V2_STAGES, conv_bn, depthwise_bn, inverted_residual,
                                        make_divisible, mobilenet_v2_encoder, mobilenet_v2_layer_names, upsample)
from portrait_sdk.models.registry import ModelSpec, register

layers = keras.layers

ACT = "relu6"  # MobileNetV2's activation, for both branches
LOW_STRIDED_STAGES = MOBILENET_V2_STAGES[:5]  # down to 96 channels at 1/16 of the half-resolution copy
LOW_DILATED_STAGES = MOBILENET_V2_STAGES[5:]  # 160 and 320 channels, stride 2 traded for dilation 2
HIGH_STAGES = MOBILENET_V2_STAGES[:3]  # down to 32 channels at 1/8 of the input
FUSION_WIDTH = 64  # CFF width, scaled by ``width`` (half ICNet's 128: the encoder is far lighter than its PSPNet)
DECODER_WIDTHS = (64, 32)  # at 1/4 and 1/2 of the input, scaled by ``width``
WIDTHS = (0.35, 0.5, 0.75, 1.0)


def low_branch(image, width: float):
    """Deep features of the half-resolution copy, keyed by stride w.r.t. the input: 16 (middle) and 32 (deep)."""
    half = layers.AveragePooling2D(2, name="low_downsample")(image)
    features = mobilenet_v2_encoder(half, width, act=ACT, stages=LOW_STRIDED_STAGES, name="low")
    x = features[16]
    for stage, (expansion, channels, repeats, _) in enumerate(LOW_DILATED_STAGES, start=len(LOW_STRIDED_STAGES)):
        for i in range(repeats):
            x = inverted_residual(x, expansion, make_divisible(channels * width), 1, ACT,
                                  name=f"low_s{stage}_b{i}", dilation_rate=2)
    return {16: features[8], 32: x}


def cascade_fusion(coarse, fine, filters: int, name: str):
    """ICNet CFF: bilinear x2 + dilated 3x3 + BN on ``coarse``, 1x1 + BN on ``fine``, sum, ReLU.

    Returns the fused map and the upsampled ``coarse`` map, on which ICNet puts its auxiliary classifier.
    """
    up = upsample(coarse, 2, name=f"{name}_up")
    coarse = conv_bn(up, filters, 3, dilation_rate=2, act=None, name=f"{name}_coarse")
    fine = conv_bn(fine, filters, 1, act=None, name=f"{name}_fine")
    fused = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([coarse, fine]))
    return fused, up


def decoder_step(x, skip, filters: int, name: str):
    """1x1 + BN to ``filters``, bilinear x2, add a 1x1 + BN projection of ``skip``, ReLU, separable 3x3."""
    x = upsample(conv_bn(x, filters, 1, act=None, name=f"{name}_reduce"), 2, name=f"{name}_up")
    skip = conv_bn(skip, filters, 1, act=None, name=f"{name}_skip")
    x = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([x, skip]))
    x = depthwise_bn(x, 3, act="relu", name=f"{name}_dw")
    return conv_bn(x, filters, 1, act="relu", name=f"{name}_pw")


def head(x, channels: int, name: str):
    """1x1 conv with bias (logits or a linear field) at 1/2, bilinear x2 to the input size (layer ``name``)."""
    return upsample(layers.Conv2D(channels, 1, name=f"{name}_conv")(x), 2, name=name)


def build(input_shape, training_heads: bool = False, width: float = 0.5, num_instance_classes: int = 11):
    """Outputs a dict {"mask", "instance", "direction"} at the input size (plus "aux_low", "aux_mid" for training).

    ``num_instance_classes`` counts the background: 11 = background + 10 fingers.
    """
    if not width > 0:
        raise ValueError(f"nail_segmenter: width must be > 0, got {width!r}")
    if not (isinstance(num_instance_classes, int) and num_instance_classes >= 2):
        raise ValueError(f"nail_segmenter: num_instance_classes must be an int >= 2 (background + at least one "
                         f"finger), got {num_instance_classes!r}")
    image = keras.Input(shape=input_shape, name="image")
    low = low_branch(image, width)
    high = mobilenet_v2_encoder(image, width, act=ACT, stages=HIGH_STAGES, name="high")
    fusion_width = make_divisible(FUSION_WIDTH * width)
    mid, aux_low = cascade_fusion(low[32], low[16], fusion_width, name="cff_low")
    x, aux_mid = cascade_fusion(mid, high[8], fusion_width, name="cff_mid")
    for stride, filters in zip((4, 2), DECODER_WIDTHS):
        x = decoder_step(x, high[stride], make_divisible(filters * width), name=f"dec{stride}")
    outputs = {"mask": head(x, 2, name="mask"),
               "instance": head(x, num_instance_classes, name="instance"),
               "direction": head(x, 2, name="direction")}
    if training_heads:
        outputs["aux_low"] = layers.Conv2D(2, 1, name="aux_low")(aux_low)
        outputs["aux_mid"] = layers.Conv2D(2, 1, name="aux_mid")(aux_mid)
    return keras.Model(image, outputs, name="nail_segmenter")


def enumerate_pairs(names: list[str]) -> list[tuple[str, int]]:
    """(Keras layer, file layer index) pairs: both branches read the file from its first layer."""
    return [(name, index) for index, name in enumerate(names)]


SPEC = register(ModelSpec(
    name="nail_segmenter",
    auxiliary_heads=("aux_low", "aux_mid"),
    # The instance and direction heads were never trained (nails/ has binary masks only), so they do not ship:
    # every released file has one output, the mask, which MediaPipe's ImageSegmenter and the mobile apps require.
    inference_heads=("mask",),
    task="nails",
    builder=build,
    description="Nail segmenter (Duke et al.): half-res deep MobileNetV2 + full-res shallow branch, ICNet cascade, "
                "mask / per-finger / direction heads",
    default_input_size=(256, 256),  # the paper runs up to 640x480: input_size=(480, 640) works
    output_stride=32,  # the low branch is at half resolution with output stride 16
    input_channels=(3,),
    output="dict: 'mask' 2-class logits (channel 1 = nail), 'instance' logits (0 = background, 1.. = fingers), "
           "'direction' base-to-tip vector field (linear, 2 channels), all at input size",
    options={"width": WIDTHS, "num_instance_classes": ()},
    # An ImageNet MobileNetV2 file (at the model's width) fills both branches: the low one whole (its dilated
    # stages take the strided ones' weights), the high one with the file's first layers again.
    pretrained_layers=lambda model: [*enumerate_pairs(mobilenet_v2_layer_names("low")),
                                     *enumerate_pairs(mobilenet_v2_layer_names("high", HIGH_STAGES))],
    reference=None,  # the paper publishes no params or MACs
))
