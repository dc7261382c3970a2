"""MediaPipe's hair segmenter (Tkachenka et al., 2019) as a Keras graph that imports its weights.

The graph was read off MediaPipe's ``hair_segmentation.tflite`` (MODELS.md section 4; ``../shared/baselines``),
an ENet-like encoder-decoder on 512x512 RGB + the previous frame's hair mask (the 4th channel), PReLU (alpha per
channel) after every layer but the linear expansions, batch norm folded into the convolutions (so none here, as
in ``selfie.py``):

- stem: two 2x2 stride-2 convs (4 -> 8 -> 32 channels, 1/4 resolution);
- encoder (``ENCODER``): bottlenecks of reduce (1x1, or 2x2 stride 2 for a stage's first block) -> a spatial
  middle (``MIDDLES``: "sep" depthwise 3x3 + 1x1 + depthwise 3x3, "dw5" depthwise 5x5 + 1x1, or "dN" a full 3x3
  with native dilation N) -> linear 1x1 expand, added to the shortcut (max-pooled when downsampling, a linear 1x1
  when the width changes) and PReLU'd; stages at 1/8, 1/16 and 1/32;
- decoder (``DECODER``): upsampling bottlenecks (1x1 reduce -> 3x3 stride-2 transposed conv -> 1x1 expand, plus
  the max-unpooled 1x1 shortcut), at 1/16 and 1/8 concatenated with the encoder's first block of that resolution,
  then one "d1" bottleneck each;
- head: two 2x2 stride-2 transposed convs, 1/4 -> 1/2 (8 channels) -> 2 logits at input size.

MediaPipe's custom ops become builtins that every GPU delegate runs: ``Convolution2DTransposeBias`` is Keras'
``Conv2DTranspose`` (TRANSPOSE_CONV); ``MaxPoolingWithArgmax2D`` is MAX_POOL_2D (the same values; its indices
only served the unpooling); ``MaxUnpooling2D(y, indices of pool(x))`` is ``MaxUnpool2x``, which puts each value
of y where x holds its 2x2 window's maximum (what the indices point at, ties broken the same way) without indices.
With the imported weights the Keras model reproduces the file to ~1e-3 in probability, and so does its float32
export (tests/test_hair_import.py).

Inputs are RGB in [0, 1] stretched to the model's size, plus the previous mask, as MediaPipe feeds it.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras, tf
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

STEM = (8, 32)  # widths of the two 2x2 stride-2 convs

# A middle's layers: (name suffix, "dw" depthwise or "conv" full, kernel, PReLU after it).
MIDDLES = {
    "sep": (("dw1", "dw", 3, False), ("pw", "conv", 1, True), ("dw2", "dw", 3, True)),
    "dw5": (("dw", "dw", 5, False), ("pw", "conv", 1, True)),
}

CONTEXT = ("sep", "d2", "dw5", "d4", "sep", "d8") * 2
# Encoder stages as blocks of (output width, bottleneck width, middle); a stage's first block halves the
# resolution.
ENCODER = (
    ((64, 16, "sep"),) * 3,
    ((128, 32, "sep"),) + ((128, 16, "sep"),) * 4,
    ((128, 16, "sep"),) + tuple((128, 8, kind) for kind in CONTEXT) + ((128, 4, "d1"),),
)
# Decoder stages as (output width, upsampling bottleneck width, refining bottleneck width, concatenate the skip).
DECODER = ((128, 8, 8, True), (64, 8, 4, True), (32, 4, 4, False))
HEAD_WIDTH = 8
# Unpooling finds a window's maximum as relu(1 - (window max - x) scaled UNPOOL_STAGES times by k): k ** 3 ~ 3.5e13
# sends any float32 difference of the file's features (near-ties are ~1e-5 apart) to 0, and k is exact in float16,
# where a product that overflows to inf still gives 0 (inf never meets the exact zero at the maximum).
UNPOOL_SHARPNESS = 32768.0
UNPOOL_STAGES = 3
# Which of a 2x2 window's tied maxima the file's indices name: the first in column-major order (measured: of
# [a, m, m, m] in raster order it takes the bottom-left m, of four equal values the top-left).
TIE_ORDER = ((0, 0), (1, 0), (0, 1), (1, 1))


def _interleave(a00, a01, a10, a11):
    """Four [B, h, w, C] maps -> [B, 2h, 2w, C] with a_ij at row parity i, column parity j, from CONCATENATION and
    RESHAPE only: concatenating channels then regrouping interleaves columns, the same along width rows."""
    _, h, w, c = a00.shape
    rows = [tf.reshape(tf.concat(pair, axis=-1), [-1, h, 2 * w, c]) for pair in ((a00, a01), (a10, a11))]
    return tf.reshape(tf.concat(rows, axis=2), [-1, 2 * h, 2 * w, c])


@keras.utils.register_keras_serializable(package="portrait_sdk")
class MaxUnpool2x(layers.Layer):
    """``[y, x]`` -> y placed at the maximum of each 2x2 window of x (y has x's pooled size), zeros elsewhere:
    max-unpooling without argmax indices, built from STRIDED_SLICE, MAX_POOL_2D, SUB, MUL, RELU, CONCATENATION and
    RESHAPE. A tie goes to the maximum the file's indices name (``TIE_ORDER``; flat image regions tie: 8 % of
    the stem's windows on a sample photo; breaking them in raster order instead moved the hair probability by up
    to 0.02, giving every tied position y by up to 0.05). ``_is_max`` is exactly 1 at a maximum and 0 below it;
    its RELUs (no-ops, the difference is >= 0) keep the converter from folding the scalings into one constant
    that float16 would store as inf (inf * 0 = NaN at the maximum). Gradients reach y only, as through indices."""

    @staticmethod
    def _is_max(window_max, x):
        below_max = window_max - x
        for _ in range(UNPOOL_STAGES):
            below_max = tf.nn.relu(UNPOOL_SHARPNESS * below_max)
        return tf.nn.relu(1.0 - below_max)

    def call(self, inputs):
        y, x = inputs
        window_max = tf.nn.max_pool2d(x, 2, 2, "VALID")
        placed, earlier = {}, 0.0  # earlier: how many maxima precede this position in its window
        for i, j in TIE_ORDER:
            is_max = self._is_max(window_max, x[:, i::2, j::2, :])
            placed[i, j] = y * (is_max * tf.nn.relu(1.0 - earlier) if i or j else is_max)
            earlier = earlier + is_max
        return _interleave(placed[0, 0], placed[0, 1], placed[1, 0], placed[1, 1])


def _prelu(x, name: str):
    return layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)(x)


def _conv(x, filters: int, name: str, kernel: int = 1, strides: int = 1, dilation: int = 1, prelu: bool = True):
    x = layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, name=name,
                      padding="valid" if kernel == strides else "same")(x)
    return _prelu(x, f"{name}_prelu") if prelu else x


def _middle_layers(kind: str) -> tuple:
    if kind in MIDDLES:
        return MIDDLES[kind]
    return (("conv", "conv", 3, True),)  # "dN"


def _middle(x, kind: str, name: str):
    dilation = int(kind[1:]) if kind not in MIDDLES else 1
    for suffix, op, kernel, prelu in _middle_layers(kind):
        if op == "dw":
            x = layers.DepthwiseConv2D(kernel, padding="same", name=f"{name}_{suffix}")(x)
            x = _prelu(x, f"{name}_{suffix}_prelu") if prelu else x
        else:
            x = _conv(x, x.shape[-1], f"{name}_{suffix}", kernel=kernel, dilation=dilation, prelu=prelu)
    return x


def _bottleneck(x, filters: int, width: int, kind: str, name: str, downsample: bool = False):
    stride = 2 if downsample else 1
    y = _conv(x, width, f"{name}_reduce", kernel=stride, strides=stride)
    y = _conv(_middle(y, kind, name), filters, f"{name}_expand", prelu=False)
    shortcut = layers.MaxPool2D(2, name=f"{name}_pool")(x) if downsample else x
    if shortcut.shape[-1] != filters:
        shortcut = _conv(shortcut, filters, f"{name}_project", prelu=False)
    return _prelu(layers.Add(name=f"{name}_add")([y, shortcut]), f"{name}_prelu")


def _upsampling_bottleneck(x, pooled_from, filters: int, width: int, name: str):
    """Reduce -> 3x3 stride-2 transposed conv -> expand, plus the 1x1 shortcut unpooled where ``pooled_from``
    (the encoder map the matching downsampling block max-pooled) held its maxima."""
    y = _conv(x, width, f"{name}_reduce")
    y = layers.Conv2DTranspose(width, 3, strides=2, padding="same", name=f"{name}_deconv")(y)
    y = _prelu(y, f"{name}_deconv_prelu")
    shortcut = _conv(x, filters, f"{name}_project", prelu=False)
    y = _conv(y, filters, f"{name}_expand", prelu=False)
    shortcut = MaxUnpool2x(name=f"{name}_unpool")([shortcut, pooled_from])
    return _prelu(layers.Add(name=f"{name}_add")([y, shortcut]), f"{name}_prelu")


def build(input_shape, training_heads: bool = False, num_classes: int = 2):
    """``training_heads`` adds "aux": 2 logits from the 1/32 features by one 1x1 conv (deep supervision)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, width in enumerate(STEM):
        x = _conv(x, width, f"stem{i}", kernel=2, strides=2)
    pooled_from, skips = [], []  # per encoder stage: the downsampled input, the first block's output
    for stage, blocks in enumerate(ENCODER):
        for i, (filters, width, kind) in enumerate(blocks):
            if i == 0:
                pooled_from.append(x)
            x = _bottleneck(x, filters, width, kind, f"enc{stage}_b{i}", downsample=i == 0)
            if i == 0:
                skips.append(x)
    features = x
    for stage, (filters, up_width, width, concat) in enumerate(DECODER):
        x = _upsampling_bottleneck(x, pooled_from[-1 - stage], filters, up_width, f"dec{stage}_up")
        if concat:
            x = layers.Concatenate(name=f"dec{stage}_concat")([x, skips[-2 - stage]])
        x = _bottleneck(x, filters, width, "d1", f"dec{stage}_b")
    x = layers.Conv2DTranspose(HEAD_WIDTH, 2, strides=2, name="head_deconv")(x)
    x = _prelu(x, "head_deconv_prelu")
    mask = layers.Conv2DTranspose(num_classes, 2, strides=2, name="mask")(x)
    if not training_heads:
        return keras.Model(inputs, mask, name="hair_segmenter")
    aux = layers.Conv2D(num_classes, 1, name="aux")(features)
    return keras.Model(inputs, {"mask": mask, "aux": aux}, name="hair_segmenter")


def _bottleneck_names(name: str, kind: str, project: bool) -> list[str]:
    names = [f"{name}_reduce", f"{name}_reduce_prelu"]
    for suffix, _, _, prelu in _middle_layers(kind):
        names += [f"{name}_{suffix}"] + ([f"{name}_{suffix}_prelu"] if prelu else [])
    return names + [f"{name}_expand"] + ([f"{name}_project"] if project else []) + [f"{name}_prelu"]


def tflite_layer_names() -> list[str]:
    """The Keras layers that take MediaPipe's weighted ops (convs and PReLUs), in the file's op order."""
    names = [n for i in range(len(STEM)) for n in (f"stem{i}", f"stem{i}_prelu")]
    width = STEM[-1]
    for stage, blocks in enumerate(ENCODER):
        for i, (filters, _, kind) in enumerate(blocks):
            names += _bottleneck_names(f"enc{stage}_b{i}", kind, project=width != filters)
            width = filters
    for stage, (filters, _, _, concat) in enumerate(DECODER):
        up = f"dec{stage}_up"
        names += [f"{up}_reduce", f"{up}_reduce_prelu", f"{up}_deconv", f"{up}_deconv_prelu", f"{up}_project",
                  f"{up}_expand", f"{up}_prelu"]
        names += _bottleneck_names(f"dec{stage}_b", "d1", project=concat)
    return names + ["head_deconv", "head_deconv_prelu", "mask"]



SPEC = register(ModelSpec(
    name="hair_segmenter",
    auxiliary_heads=("aux",),
    custom_layers={MaxUnpool2x: True},  # builtin ops inside; its output gets a range
    task="hair",
    builder=build,
    description="MediaPipe's hair segmenter (ENet-like encoder-decoder with U-Net skips on RGB + previous mask), "
                "weights importable from its .tflite; builtin ops only",
    default_input_size=(512, 512),
    # The encoder reaches 1/32, but LiteRT's GPU TRANSPOSE_CONV shifts a 3x3 stride-2 'same' upsampling of an
    # odd-sized map by one pixel (tests/test_gpu_check.py keeps a canary): sizes that are multiples of 64 keep
    # every decoder input even.
    output_stride=64,
    input_channels=(4, 3),
    output="2-class logits at input size; softmax channel 1 = hair",
    options={"num_classes": ()},
    resize="stretch",  # as MediaPipe feeds it
    pretrained_layers=lambda model: tflite_layer_names(),
    reference=Reference(params=181_500, macs=254_000_000, input_size=(512, 512),
                        source="MODELS.md section 4 (parsed from MediaPipe's hair_segmentation.tflite)"),
))
