"""ExtremeC3Net (Park et al. 2019): an ~38 K-parameter portrait segmenter built from advanced C3 modules.

Layout as in the official code (clovaai/ext_portrait_segmentation, ``models/extremeC3.py``, configured with
p = 1, q = 5 and widths 24 / 48 / 56):

* Encoder (stage 1), output stride 4: a 3x3 stride-2 conv to 24 channels, concatenated with the image
  average-pooled to 1/2; a down-sampling advanced C3 module to 48 channels at 1/4; p residual modules; a
  concatenation with the image pooled to 1/4; a non-residual module to 56 channels; q residual modules; and the
  concatenation of the first and last 56-channel maps (112 channels). Stage 1 trains a 1x1 classifier on it
  ("coarse", at 1/4).
* Stage 2 drops that classifier and sums two 24-channel branches at 1/2: the encoder features through a 1x1
  conv + BN upsampled by 2, and a fine branch on the raw image (3x3 stride-2 conv + one residual module).
  BN + PReLU, bilinear x2, and a 1x1 conv to one logit at full resolution (Lovasz hinge; person when > 0).

The advanced C3 module reduces the input to n = nOut // 3 channels, runs three C3 blocks with different
dilation rates in parallel (the first also produces the nOut - 3n remainder channels), concatenates them, adds
the input when asked, and applies BN + PReLU. A C3 block with rate d > 1 first runs factorised (2d-1)x1 and
1x(2d-1) depthwise convs (which see the holes a dilated kernel skips), then the dilated 3x3 depthwise conv and a
1x1 projection.

Porting notes: the official BNs inside C3 blocks and after the stage-2 1x1 conv use PyTorch's default epsilon
(1e-5), the others 1e-3; both are kept. PyTorch upsamples with ``align_corners=True`` and pads stride-2 convs
symmetrically, whereas here the resize uses half-pixel centres and 'same' padding; this matters only when
porting the official weights.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras
from portrait_sdk.models.blocks import activation, batch_norm, conv_bn, upsample
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

# The official network as configured for portraits: widths and module counts of the encoder levels.
LEVEL1_WIDTH, LEVEL2_WIDTH, LEVEL3_WIDTH, FINE_WIDTH = 24, 48, 56, 24
LEVEL2_REPEATS, LEVEL3_REPEATS = 1, 5  # p and q
TORCH_BN_EPSILON = 1e-5  # nn.BatchNorm2d's default, used where the official code does not pass eps=1e-3


def _depthwise(x, kernel_size, name: str, dilation_rate: int = 1):
    """Bias-free depthwise conv ('same' padding, native dilation)."""
    return layers.DepthwiseConv2D(kernel_size, padding="same", dilation_rate=dilation_rate, use_bias=False,
                                  name=name)(x)


def _conv(x, filters: int, kernel_size: int, name: str, strides: int = 1):
    """Bias-free conv without batch norm or activation (the official ``C``)."""
    return conv_bn(x, filters, kernel_size, strides=strides, act=None, name=name, use_bn=False, use_bias=False)


def _torch_bn(x, name: str):
    return batch_norm(x, name, epsilon=TORCH_BN_EPSILON)


def bn_prelu(x, name: str):
    """Batch norm + channel-wise PReLU (the official ``BR``), used after every concatenation."""
    return activation(batch_norm(x, name), "prelu", name)


def c3_block(x, filters: int, rate: int, name: str):
    """C3 block: [(2d-1)x1 dw + BN + PReLU, 1x(2d-1) dw + BN if d > 1], dilated 3x3 dw, 1x1 to ``filters``."""
    if rate < 1:
        raise ValueError(f"{name}: dilation rate must be >= 1, got {rate}")
    if rate > 1:
        size = 2 * rate - 1
        x = _depthwise(x, (size, 1), name=f"{name}_dw_col")
        x = activation(_torch_bn(x, f"{name}_dw_col"), "prelu", f"{name}_dw_col")
        x = _depthwise(x, (1, size), name=f"{name}_dw_row")
        x = _torch_bn(x, f"{name}_dw_row")
    x = _depthwise(x, 3, dilation_rate=rate, name=f"{name}_dw")
    return _conv(x, filters, 1, name=f"{name}_pw")


def advanced_c3(x, filters: int, rates, name: str, residual: bool = False, downsample: bool = False):
    """Advanced C3 module: reduce, three parallel C3 blocks at ``rates``, concat, [+ input], BN + PReLU.

    The reduction is a 1x1 conv, or a 3x3 stride-2 conv when ``downsample``; the identity residual needs the
    input and output shapes to match.
    """
    if len(rates) != 3:
        raise ValueError(f"{name}: an advanced C3 module has exactly 3 dilation rates, got {tuple(rates)}")
    if residual and (downsample or x.shape[-1] != filters):
        raise ValueError(f"{name}: the identity residual needs stride 1 and equal input / output widths "
                         f"(got {x.shape[-1]} -> {filters}, downsample={downsample})")
    reduced_width = filters // 3
    if reduced_width < 1:
        raise ValueError(f"{name}: filters must be >= 3, got {filters}")
    if downsample:
        reduced = _conv(x, reduced_width, 3, strides=2, name=f"{name}_reduce")
    else:
        reduced = _conv(x, reduced_width, 1, name=f"{name}_reduce")
    widths = (filters - 2 * reduced_width, reduced_width, reduced_width)
    branches = [c3_block(reduced, width, rate, name=f"{name}_d{i}")
                for i, (width, rate) in enumerate(zip(widths, rates))]
    y = layers.Concatenate(name=f"{name}_concat")(branches)
    if residual:
        y = layers.Add(name=f"{name}_add")([x, y])
    return bn_prelu(y, name)


def _repeat(x, repeats: int, rates, name: str):
    """``repeats`` residual advanced C3 modules of constant width, named ``{name}_1`` onwards."""
    for i in range(1, repeats + 1):
        x = advanced_c3(x, x.shape[-1], rates, residual=True, name=f"{name}_{i}")
    return x


def encoder(image, name: str = "enc"):
    """Stage-1 body: the image at 1/1, 1/2 and 1/4 feeds three levels; returns 112 channels at 1/4."""
    half = layers.AveragePooling2D(2, name=f"{name}_image_half")(image)
    quarter = layers.AveragePooling2D(2, name=f"{name}_image_quarter")(half)

    x = conv_bn(image, LEVEL1_WIDTH, 3, strides=2, act="prelu", name=f"{name}_level1")
    x = bn_prelu(layers.Concatenate(name=f"{name}_cat1")([x, half]), f"{name}_cat1")

    down = advanced_c3(x, LEVEL2_WIDTH, (1, 2, 3), downsample=True, name=f"{name}_level2_0")
    x = _repeat(down, LEVEL2_REPEATS, (1, 3, 4), name=f"{name}_level2")
    x = bn_prelu(layers.Concatenate(name=f"{name}_cat2")([x, down, quarter]), f"{name}_cat2")

    first = advanced_c3(x, LEVEL3_WIDTH, (1, 3, 5), name=f"{name}_level3_0")
    x = _repeat(first, LEVEL3_REPEATS, (2, 4, 8), name=f"{name}_level3")
    return bn_prelu(layers.Concatenate(name=f"{name}_cat3")([first, x]), f"{name}_cat3")


def build(input_shape, training_heads: bool = False):
    inputs = keras.Input(shape=input_shape, name="image")
    features = encoder(inputs)

    coarse_branch = _torch_bn(_conv(features, FINE_WIDTH, 1, name="coarse_proj"), "coarse_proj")
    coarse_branch = upsample(coarse_branch, 2, name="coarse_up")
    fine_branch = _conv(inputs, FINE_WIDTH, 3, strides=2, name="fine_stem")
    fine_branch = advanced_c3(fine_branch, FINE_WIDTH, (2, 4, 8), residual=True, name="fine_c3")

    x = bn_prelu(layers.Add(name="merge")([coarse_branch, fine_branch]), "merge")
    x = upsample(x, 2, name="merge_up")
    mask = _conv(x, 1, 1, name="mask")
    if not training_heads:
        return keras.Model(inputs, mask, name="extremec3net")
    coarse = _conv(features, 1, 1, name="coarse")
    return keras.Model(inputs, {"mask": mask, "coarse": coarse}, name="extremec3net")


SPEC = register(ModelSpec(
    name="extremec3net",
    auxiliary_heads=("coarse",),
    task="portrait",
    builder=build,
    description="ExtremeC3Net: advanced C3 encoder with image pyramid at 1/4 + fine branch at 1/2 (~38 K params)",
    default_input_size=(224, 224),
    output_stride=4,
    input_channels=(3,),
    output="1 logit at input size; person where logit > 0 (training head 'coarse': stage-1 logit at 1/4)",
    reference=Reference(params=37_700, macs=128_000_000, input_size=(224, 224),
                        source="MODELS.md section 3 (README of clovaai/ext_portrait_segmentation; paper abstract)"),
))
