"""MediaPipe's selfie segmenter (general 256x256, landscape 144x256) as a Keras graph that imports its weights.

The graph was read off MediaPipe's own ``.tflite`` files (MODELS.md section 6; ``../shared/baselines``):

- encoder, a truncated MobileNetV3-small at output stride 16: a 3x3 stride-2 stem with hard-swish, then the
  inverted-residual blocks of ``ENCODER`` (expansion, depthwise kernel and stride, squeeze-excitation width,
  activation, residual); the excitation is global average pool, 1x1 + ReLU, 1x1 + sigmoid, multiply;
- an LR-ASPP-like head: ReLU(1x1 -> 128) times sigmoid(1x1(global pool));
- three decoder stages at 1/8, 1/4 and 1/2 (``DECODER``): bilinear x2 (half-pixel centres), a 1x1 projection p to
  the skip's width, a channel gate g computed from skip + p, skip * g + p, then a residual refine r + ReLU(dw3x3(r))
  with r = ReLU(1x1);
- a 2x2 stride-2 transposed convolution to one logit. MediaPipe ships it as its custom op
  ``Convolution2DTransposeBias``; here it is Keras' ``Conv2DTranspose``, which converts to the builtin
  TRANSPOSE_CONV that every GPU delegate runs.

No batch norm (MediaPipe's files have it folded into the convolutions, and fine-tuning from them works without
it). ``tflite_layer_names`` lists the Keras layers in the order of the file's weighted ops, the explicit mapping
``portrait_sdk.tflite_weights`` imports by: ``tflite_weights.load_pretrained(model, path)`` gives a Keras model whose output
matches the ``.tflite`` file's (tests/test_selfie.py).

Inputs are RGB in [0, 1] stretched to the model's size, as MediaPipe feeds it.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras, tf
from portrait_sdk.models.registry import ModelSpec, Reference, register

layers = keras.layers

STEM_WIDTH = 16
# (expansion width, output width, depthwise kernel, stride, squeeze-excitation width (0: none), activation)
ENCODER = (
    (16, 16, 3, 2, 8, "relu"),
    (72, 24, 3, 2, 0, "relu"),
    (88, 24, 3, 1, 0, "relu"),
    (96, 32, 5, 2, 24, "hard_swish"),
    (128, 32, 5, 1, 32, "hard_swish"),
    (128, 32, 5, 1, 32, "hard_swish"),
    (96, 32, 5, 1, 24, "hard_swish"),
    (96, 32, 5, 1, 24, "hard_swish"),
)
HEAD_WIDTH = 128
DECODER = (24, 16, 16)  # widths of the 1/8, 1/4 and 1/2 stages (the skips' widths)
SKIP_BLOCKS = {8: 2, 4: 0}  # output stride -> index of the encoder block whose output is that stage's skip


@keras.utils.register_keras_serializable(package="portrait_sdk")
class HardSwish(layers.Layer):
    """x * ReLU6(x + 3) / 6, which the TFLite converter fuses into one HARD_SWISH op (GPU delegate: yes)."""

    def call(self, x):
        return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


def _act(x, kind: str, name: str):
    if kind == "hard_swish":
        return HardSwish(name=f"{name}_hswish")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv(x, filters: int, name: str, kernel: int = 1, strides: int = 1, act: str | None = None):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name)(x)
    return _act(x, act, name) if act else x


def _gate(x, width: int, name: str):
    """Channel gate: sigmoid(1x1(ReLU(1x1(global average pool)))), shape [B, 1, 1, C]."""
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    g = _conv(g, width, f"{name}_reduce", act="relu")
    return _sigmoid(layers.Conv2D(x.shape[-1], 1, name=f"{name}_expand")(g), f"{name}_expand")


def _sigmoid(x, name: str):
    """A layer of its own (not the conv's activation), so QAT sees LOGISTIC's fixed int8 range."""
    return layers.Activation("sigmoid", name=f"{name}_sigmoid")(x)


def _encoder_block(x, i: int, expand: int, out: int, kernel: int, stride: int, se: int, act: str):
    name = f"enc{i}"
    y = _conv(x, expand, f"{name}_expand", act=act)
    y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", name=f"{name}_dw")(y)
    y = _act(y, act, f"{name}_dw")
    if se:
        y = layers.Multiply(name=f"{name}_se")([y, _gate(y, se, f"{name}_se")])
    y = _conv(y, out, f"{name}_project")
    if stride == 1 and x.shape[-1] == out:
        y = layers.Add(name=f"{name}_add")([y, x])
    return y


def _decoder_stage(x, skip, width: int, name: str):
    up = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(x)
    p = _conv(up, width, f"{name}_project")
    merged = layers.Add(name=f"{name}_merge")([skip, p])
    gate = _gate(merged, width, f"{name}_gate")
    x = layers.Add(name=f"{name}_fuse")([layers.Multiply(name=f"{name}_gated")([skip, gate]), p])
    r = _conv(x, width, f"{name}_refine", act="relu")
    d = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(r)
    return layers.Add(name=f"{name}_out")([r, layers.ReLU(name=f"{name}_dw_relu")(d)])


def build(input_shape, training_heads: bool = False):
    """``training_heads`` changes nothing: the model has one head (kept for the zoo's common signature)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv(inputs, STEM_WIDTH, "stem", kernel=3, strides=2, act="hard_swish")
    skips = {2: x}
    for i, block in enumerate(ENCODER):
        x = _encoder_block(x, i, *block)
        skips.update({stride: x for stride, index in SKIP_BLOCKS.items() if index == i})
    main = _conv(x, HEAD_WIDTH, "head_conv", act="relu")
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(x)
    gate = _sigmoid(layers.Conv2D(HEAD_WIDTH, 1, name="head_gate")(pooled), "head_gate")
    x = layers.Multiply(name="head")([main, gate])
    for width, stride in zip(DECODER, (8, 4, 2)):
        x = _decoder_stage(x, skips[stride], width, f"dec{stride}")
    mask = layers.Conv2DTranspose(1, 2, strides=2, padding="same", name="mask")(x)
    outputs = {"mask": mask} if training_heads else mask
    return keras.Model(inputs, outputs, name="selfie")


def tflite_layer_names() -> list[str]:
    """The Keras layers that take MediaPipe's weighted ops, in the file's op order (the import mapping)."""
    names = ["stem"]
    for i, (_, _, _, _, se, _) in enumerate(ENCODER):
        names += [f"enc{i}_expand", f"enc{i}_dw"]
        names += [f"enc{i}_se_reduce", f"enc{i}_se_expand"] if se else []
        names.append(f"enc{i}_project")
    names += ["head_conv", "head_gate"]
    for stride in (8, 4, 2):
        d = f"dec{stride}"
        names += [f"{d}_project", f"{d}_gate_reduce", f"{d}_gate_expand", f"{d}_refine", f"{d}_dw"]
    return names + ["mask"]



SPEC = register(ModelSpec(
    name="selfie",
    custom_layers={HardSwish: True},  # HARD_SWISH is an int8 kernel with its own output range
    task="portrait",
    builder=build,
    description="MediaPipe's selfie segmenter (MobileNetV3-small encoder, gated decoder), weights importable "
                "from its .tflite; builtin TRANSPOSE_CONV head",
    default_input_size=(256, 256),
    output_stride=16,
    output="1 logit at input size; sigmoid = person",
    resize="stretch",  # as MediaPipe feeds it
    pretrained_layers=lambda model: tflite_layer_names(),
    reference=Reference(params=106_400, macs=59_000_000, input_size=(256, 256),
                        source="MODELS.md section 6 (parsed from MediaPipe's selfie_segmentation.tflite)"),
))
