"""Building blocks shared by the architectures of the zoo.

Every block is written so that it converts to builtin TFLite ops that the mobile GPU delegate runs:
batch norm folds into the preceding conv, PReLU shares its alpha over H and W (PRELU with alpha [1, 1, C]),
dilated convs use the native ``dilation_rate`` (no SPACE_TO_BATCH_ND), resizes are bilinear with half-pixel
centres (RESIZE_BILINEAR), transposed convs are the builtin TRANSPOSE_CONV.
"""

from __future__ import annotations

from portrait_sdk.keras_env import keras

layers = keras.layers

BN_EPSILON = 1e-3


def activation(x, kind: str | None, name: str):
    """Apply ``kind`` ("relu", "relu6", "prelu" or None for linear) to ``x``."""
    if kind is None:
        return x
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "relu6":
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)
    if kind == "prelu":
        alpha = keras.initializers.Constant(0.25)
        return layers.PReLU(alpha_initializer=alpha, shared_axes=[1, 2], name=f"{name}_prelu")(x)
    raise ValueError(f"unknown activation {kind!r}; expected relu, relu6, prelu or None")


BN_MOMENTUM = 0.9  # PyTorch's default (momentum 0.1 there), which every official code of the zoo trains with


def batch_norm(x, name: str, epsilon: float = BN_EPSILON):
    """Batch norm whose statistics are synchronised across replicas, so a batch split over several devices
    (MirroredStrategy) trains exactly like the same batch on one; on one device it is plain batch norm.

    Keras' default momentum (0.99) averages the statistics over ~100 steps: in short trainings, where the weights
    move fast, the moving statistics lag the batch statistics so far that the inference graph fails while the
    training graph works (the nail segmenter validated at IoU 0.0 after 260 steps; re-estimating the statistics
    gave 0.30). 0.9 follows the weights closely enough."""
    return layers.BatchNormalization(epsilon=epsilon, momentum=BN_MOMENTUM, synchronized=True,
                                     name=f"{name}_bn")(x)


def conv_bn(x, filters: int, kernel_size=3, strides=1, dilation_rate=1, act: str | None = "relu",
            name: str = "conv", use_bn: bool = True, use_bias: bool | None = None):
    """Conv2D ('same' padding) + optional batch norm + activation."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", dilation_rate=dilation_rate,
                      use_bias=(not use_bn) if use_bias is None else use_bias, name=name)(x)
    if use_bn:
        x = batch_norm(x, name)
    return activation(x, act, name)


def depthwise_bn(x, kernel_size=3, strides=1, dilation_rate=1, act: str | None = "relu",
                 name: str = "dw", use_bn: bool = True):
    """DepthwiseConv2D ('same' padding, native dilation) + optional batch norm + activation."""
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same", dilation_rate=dilation_rate,
                               use_bias=not use_bn, name=name)(x)
    if use_bn:
        x = batch_norm(x, name)
    return activation(x, act, name)


def transpose_conv_bn(x, filters: int, kernel_size=4, strides=2, act: str | None = None,
                      name: str = "deconv", use_bn: bool = False, use_bias: bool = False):
    """Builtin TRANSPOSE_CONV upsampling by ``strides`` ('same' padding)."""
    x = layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                               name=name)(x)
    if use_bn:
        x = batch_norm(x, name)
    return activation(x, act, name)


def upsample(x, factor: int, name: str):
    """Bilinear upsampling by an integer factor (RESIZE_BILINEAR, half-pixel centres)."""
    return layers.UpSampling2D(size=factor, interpolation="bilinear", name=name)(x)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a width to a multiple of ``divisor`` (MobileNet / MMNet width-multiplier rule)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def inverted_residual(x, expansion: int, filters: int, strides: int, act: str, name: str,
                      dilation_rate: int = 1):
    """MobileNetV2 inverted residual: 1x1 expand, depthwise 3x3, linear 1x1 project; residual when shapes match."""
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = conv_bn(y, in_channels * expansion, 1, act=act, name=f"{name}_expand")
    y = depthwise_bn(y, 3, strides=strides, dilation_rate=dilation_rate, act=act, name=f"{name}_dw")
    y = conv_bn(y, filters, 1, act=None, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


# MobileNetV2 stages as (expansion t, output channels c, repeats n, stride s).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2_layer_names(name: str = "enc", stages=MOBILENET_V2_STAGES) -> list[str]:
    """The weighted layers of ``mobilenet_v2_encoder(..., stages, name)`` in the order of a published MobileNetV2
    file's convolutions (stem; per block expand, depthwise, project): the mapping that imports ImageNet weights
    (``portrait_sdk.tflite_weights``; ``../shared/pretrained/tf2_mobilenet_v2_1.0_224_ptq.tflite``)."""
    names = [f"{name}_stem"]
    for stage, (t, _, n, _) in enumerate(stages):
        for i in range(n):
            block = f"{name}_s{stage}_b{i}"
            names += ([f"{block}_expand"] if t != 1 else []) + [f"{block}_dw", f"{block}_project"]
    return names


def mobilenet_v2_encoder(x, width: float = 1.0, act: str = "relu", stages=MOBILENET_V2_STAGES,
                         name: str = "enc"):
    """MobileNetV2 body. Returns the features keyed by output stride (the last block of each stride wins)."""
    x = conv_bn(x, make_divisible(32 * width), 3, strides=2, act=act, name=f"{name}_stem")
    features = {2: x}
    stride = 2
    for stage, (t, c, n, s) in enumerate(stages):
        for i in range(n):
            x = inverted_residual(x, t, make_divisible(c * width), s if i == 0 else 1, act,
                                  name=f"{name}_s{stage}_b{i}")
        stride *= s
        features[stride] = x
    return features
