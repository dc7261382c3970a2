"""SINet (Park et al. 2019): an ~87 K-parameter portrait segmenter built from spatial squeeze (S2) modules.

Layout as in the official code (clovaai/ext_portrait_segmentation, ``models/SINet.py``, configured with p = 2,
q = 8, chnn = 1, i.e. widths 12 / 16 / 48 / 96):

* Encoder, output stride 8: a 3x3 stride-2 conv to 12 channels; an SE-separable stride-2 block to 16 channels
  (1/4); p S2 modules to 48 channels; BN + PReLU of [16, 48]; an SE-separable stride-2 block to 48 channels
  (1/8); q S2 modules to 96 channels; BN + PReLU of [48, 96]; a 1x1 classifier to 2 logits at 1/8. Stage 1 of
  the official recipe trains this classifier alone ("coarse", labels at 1/8).
* Information-blocking decoder (stage 2): the coarse logits are upsampled x2 and batch-normalised; where they
  are confident, the 1/4 detail branch (1x1 conv + BN + PReLU on the last level-2 S2 module, 2 channels) is
  blocked, i.e. multiplied by 1 - max softmax; the sum of both is upsampled x2 (1/2) and batch-normalised, then
  upsampled x2 and classified by a 3x3 conv ("mask", 2 logits at input size).

An S2 module reduces its input with a 2-group 1x1 conv to n = nOut / 2 channels, shuffles the channels, feeds
the *whole* reduced map to two S2 blocks (kernel k, pooling s per block, from ``S2_CONFIGS``), concatenates
them, adds the input when the widths match, and applies BN + PReLU. An S2 block average-pools by s, runs a
depthwise kxk + BN + PReLU and a 1x1 conv, upsamples by s and batch-normalises.

Channel shuffle (no 5-D reshape or TRANSPOSE): both S2 blocks that read the shuffled map start with per-channel
operations (average pool, depthwise conv, BN, PReLU) and then a dense 1x1 conv over all channels, so permuting
their input channels only relabels those per-channel weights and the 1x1 conv's input rows. The shuffle is
therefore folded into weights learned from scratch and simply omitted; the function class is unchanged. The
grouped 1x1 itself is a channel split (two STRIDED_SLICE), one 1x1 conv per group and a concatenation, which the
GPU delegate runs (grouped CONV_2D support varies). Porting the official weights would mean permuting the
depthwise / BN / PReLU parameters and the 1x1 input rows of both blocks by the shuffle order.

Information-blocking gate: for 2 classes, max softmax = sigmoid(|z1 - z0|), so 1 - max softmax =
sigmoid(-|z1 - z0|) = sigmoid(min(z1 - z0, z0 - z1)): SUB, SUB, MINIMUM, LOGISTIC, with no REDUCE_MAX or ABS.

Porting notes: the SE blocks' two linear layers (each followed by PReLU and *no* sigmoid, as in the official
code) are 1x1 convs on the global average, so the graph stays 4-D (MEAN, CONV_2D, PRELU, MUL). PyTorch upsamples
with ``align_corners=True`` and pads stride-2 convs symmetrically, whereas here the resize uses half-pixel
centres and 'same' padding; this matters only when porting the official weights.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import activation, batch_norm, conv_bn, depthwise_bn, upsample
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

NUM_CLASSES = 2  # the information-blocking gate is the closed form of a 2-class max softmax
LEVEL1_WIDTH, LEVEL2_DOWN_WIDTH, LEVEL2_WIDTH, LEVEL3_WIDTH = 12, 16, 48, 96
LEVEL2_SE_REDUCTION, LEVEL3_SE_REDUCTION = 1, 2
# (kernel size, average-pool factor) of the two S2 blocks of each S2 module: 2 modules at 1/4, then 8 at 1/8.
S2_CONFIGS = (
    ((3, 1), (5, 1)), ((3, 1), (3, 1)),
    ((3, 1), (5, 1)), ((3, 1), (3, 1)), ((5, 1), (3, 2)), ((5, 2), (3, 4)),
    ((3, 1), (3, 1)), ((5, 1), (5, 1)), ((3, 2), (3, 4)), ((3, 1), (5, 2)),
)
LEVEL2_MODULES = 2  # p; the remaining S2_CONFIGS entries (q = 8) are level 3


@keras.utils.register_keras_serializable(package="portrait_sdk")
class ChannelSlice(layers.Layer):
    """Channels [start, stop) of an NHWC tensor, as one STRIDED_SLICE (``tf.split`` would give SPLIT, off-GPU)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= start < stop:
            raise ValueError(f"ChannelSlice needs 0 <= start < stop, got start={start}, stop={stop}")
        self.start, self.stop = start, stop

    def call(self, inputs):
        return inputs[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def bn_prelu(x, name: str):
    """Batch norm + channel-wise PReLU (the official ``BR``)."""
    return activation(batch_norm(x, name), "prelu", name)


def _pointwise(x, filters: int, name: str):
    """Bias-free 1x1 conv without batch norm or activation (the official ``C`` with kernel 1)."""
    return conv_bn(x, filters, 1, act=None, name=name, use_bn=False, use_bias=False)


def grouped_pointwise(x, filters: int, groups: int, name: str):
    """Grouped bias-free 1x1 conv as channel slices, one 1x1 conv per group, and a concatenation."""
    in_channels = x.shape[-1]
    if in_channels % groups or filters % groups:
        raise ValueError(f"{name}: input ({in_channels}) and output ({filters}) widths must be multiples of the "
                         f"{groups} groups")
    step = in_channels // groups
    outputs = [_pointwise(ChannelSlice(g * step, (g + 1) * step, name=f"{name}_split{g}")(x), filters // groups,
                          name=f"{name}_g{g}")
               for g in range(groups)]
    return layers.Concatenate(name=f"{name}_concat")(outputs)


def squeeze_excite(x, reduction: int, name: str):
    """The official ``SqueezeBlock``: global average, linear + PReLU (twice when reducing), scale the input.

    There is no sigmoid: the official code scales by the PReLU output directly.
    """
    channels = x.shape[-1]
    if reduction < 1 or channels % reduction:
        raise ValueError(f"{name}: SE reduction must be a positive divisor of the width {channels}, got {reduction}")
    widths = (channels,) if reduction == 1 else (channels // reduction, channels)
    scale = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    for i, width in enumerate(widths):
        scale = conv_bn(scale, width, 1, act="prelu", name=f"{name}_fc{i}", use_bn=False)
    return layers.Multiply(name=f"{name}_scale")([x, scale])


def se_separable_down(x, filters: int, reduction: int, name: str):
    """The official ``SEseparableCBR`` at stride 2: depthwise 3x3 s2, SE, 1x1, BN + PReLU."""
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = squeeze_excite(x, reduction, name=f"{name}_se")
    return bn_prelu(_pointwise(x, filters, name=f"{name}_pw"), f"{name}_pw")


def s2_block(x, filters: int, kernel_size: int, pool: int, name: str):
    """S2 block: [avg-pool by ``pool``], depthwise kxk + BN + PReLU, 1x1, [bilinear up by ``pool``], BN."""
    if pool > 1:
        if x.shape[1] % pool or x.shape[2] % pool:
            raise ValueError(f"{name}: feature map {x.shape[1]}x{x.shape[2]} must be divisible by the pool {pool}")
        x = layers.AveragePooling2D(pool, name=f"{name}_pool")(x)
    x = depthwise_bn(x, kernel_size, act="prelu", name=f"{name}_dw")
    x = _pointwise(x, filters, name=f"{name}_pw")
    if pool > 1:
        x = upsample(x, pool, name=f"{name}_up")
    return batch_norm(x, f"{name}_pw")


def s2_module(x, filters: int, config, name: str):
    """S2 module: grouped 1x1 reduce, one S2 block per ``config`` entry on the whole reduced map, concat,
    identity residual when the input and output widths match, BN + PReLU. (Channel shuffle folded away, see
    the module docstring.)"""
    groups = len(config)
    reduced_width = filters // groups
    reduced = grouped_pointwise(x, reduced_width, groups, name=f"{name}_reduce")
    widths = (filters - (groups - 1) * reduced_width,) + (reduced_width,) * (groups - 1)
    y = layers.Concatenate(name=f"{name}_concat")([
        s2_block(reduced, width, kernel_size, pool, name=f"{name}_d{i}")
        for i, (width, (kernel_size, pool)) in enumerate(zip(widths, config))])
    if x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return bn_prelu(y, name)


def _s2_stack(x, filters: int, configs, name: str):
    """S2 modules to ``filters`` channels (the first one widens, the others are residual), named ``{name}_i``."""
    for i, config in enumerate(configs):
        x = s2_module(x, filters, config, name=f"{name}_{i}")
    return x


def encoder(image, name: str = "enc"):
    """Stage-1 body. Returns the last level-2 S2 module (48 ch at 1/4) and the 144-channel features at 1/8."""
    x = conv_bn(image, LEVEL1_WIDTH, 3, strides=2, act="prelu", name=f"{name}_level1")
    down2 = se_separable_down(x, LEVEL2_DOWN_WIDTH, LEVEL2_SE_REDUCTION, name=f"{name}_level2_down")
    level2 = _s2_stack(down2, LEVEL2_WIDTH, S2_CONFIGS[:LEVEL2_MODULES], name=f"{name}_level2")
    x = bn_prelu(layers.Concatenate(name=f"{name}_cat2")([down2, level2]), f"{name}_cat2")
    down3 = se_separable_down(x, LEVEL2_WIDTH, LEVEL3_SE_REDUCTION, name=f"{name}_level3_down")
    level3 = _s2_stack(down3, LEVEL3_WIDTH, S2_CONFIGS[LEVEL2_MODULES:], name=f"{name}_level3")
    features = bn_prelu(layers.Concatenate(name=f"{name}_cat3")([down3, level3]), f"{name}_cat3")
    return level2, features


def information_blocking_gate(logits, name: str):
    """1 - max softmax of 2-class logits, i.e. sigmoid(min(z1 - z0, z0 - z1)): 1 channel, near 0 where confident."""
    z0 = ChannelSlice(0, 1, name=f"{name}_z0")(logits)
    z1 = ChannelSlice(1, 2, name=f"{name}_z1")(logits)
    margin = layers.Subtract(name=f"{name}_margin")([z1, z0])
    negated = layers.Subtract(name=f"{name}_margin_neg")([z0, z1])
    negative_abs = layers.Minimum(name=f"{name}_neg_abs")([margin, negated])
    return layers.Activation("sigmoid", name=name)(negative_abs)


def build(input_shape, training_heads: bool = False):
    """SINet; returns 2-class logits at input size ("mask"), plus the stage-1 classifier "coarse" at 1/8."""
    inputs = keras.Input(shape=input_shape, name="image")
    level2, features = encoder(inputs)
    coarse = _pointwise(features, NUM_CLASSES, name="coarse")

    stage1 = batch_norm(upsample(coarse, 2, name="stage1_up"), "stage1")
    gate = information_blocking_gate(stage1, name="stage1_gate")
    detail = conv_bn(level2, NUM_CLASSES, 1, act="prelu", name="detail")
    blocked = layers.Multiply(name="detail_blocked")([detail, gate])  # gate second: the GPU MUL broadcasts it
    x = layers.Add(name="stage2_merge")([blocked, stage1])
    x = batch_norm(upsample(x, 2, name="stage2_up"), "stage2")
    x = upsample(x, 2, name="head_up")
    mask = layers.Conv2D(NUM_CLASSES, 3, padding="same", use_bias=False, name="mask")(x)
    if not training_heads:
        return keras.Model(inputs, mask, name="sinet")
    return keras.Model(inputs, {"mask": mask, "coarse": coarse}, name="sinet")


SPEC = register(ModelSpec(
    name="sinet",
    auxiliary_heads=("coarse",),
    custom_layers={ChannelSlice: False},  # a slice keeps its input's int8 values and scale
    task="portrait",
    builder=build,
    description="SINet: S2-module encoder with SE blocks + information-blocking decoder (~87 K params)",
    default_input_size=(224, 224),
    output_stride=32,  # 1/8 features average-pooled by 4 inside level-3 S2 blocks
    input_channels=(3,),
    output="2-class logits at input size; softmax channel 1 = person "
           "(training head 'coarse': stage-1 logits at 1/8)",
    reference=Reference(params=86_900, macs=64_000_000, input_size=(224, 224),
                        source="MODELS.md section 3 (SINet paper abstract; README of clovaai/ext_portrait_segmentation)"),
))
