"""``toy``: a tiny architecture for the trainer and QAT tests, registered per test (or in a test's child process).

A few layers of each kind QAT treats specially (conv + batch norm, PReLU, batch norm after a concat, bilinear
upsampling) and a "coarse" training head, as ExtremeC3Net has; it learns the toy discs in a few steps (fast
batch-norm momentum). Its batch norm is synchronised across replicas, as the zoo's (``blocks.batch_norm``). What
those tests check (exact resume, MirroredStrategy parity, QAT keeping the metric) does not depend on the
architecture, and the zoo's graphs take minutes to trace on a loaded 2-core machine; this one takes seconds.
"""

from __future__ import annotations

NAME = "toy"
SIZE = (32, 32)


def build_toy(input_shape, training_heads: bool = False):
    from portrait_sdk.keras_env import keras

    layers = keras.layers

    def conv_bn(x, name):
        x = layers.Conv2D(8, 3, padding="same", use_bias=False, name=name)(x)
        return layers.BatchNormalization(momentum=0.5, synchronized=True, name=f"{name}_bn")(x)

    image = keras.Input(shape=input_shape, name="image")
    full = layers.PReLU(shared_axes=[1, 2], name="full_prelu")(conv_bn(image, "full"))
    half = layers.ReLU(name="half_relu")(conv_bn(layers.AveragePooling2D(2, name="pool")(full), "half"))
    x = layers.Concatenate(name="concat")([full, layers.UpSampling2D(2, interpolation="bilinear", name="up")(half)])
    x = layers.BatchNormalization(momentum=0.5, synchronized=True, name="concat_bn")(x)
    mask = layers.Conv2D(1, 1, name="mask")(layers.PReLU(shared_axes=[1, 2], name="concat_prelu")(x))
    if not training_heads:
        return keras.Model(image, mask, name=NAME)
    return keras.Model(image, {"mask": mask, "coarse": layers.Conv2D(1, 1, name="coarse")(half)}, name=NAME)


def toy_spec():
    from portrait_sdk.models import registry

    return registry.ModelSpec(name=NAME, task="portrait", builder=build_toy, description="trainer / QAT test model",
                              default_input_size=SIZE, output_stride=2)


def register_toy() -> None:
    """For a child process: ``toy`` joins the registry for the rest of the process."""
    from portrait_sdk.models import registry

    registry.register(toy_spec())
