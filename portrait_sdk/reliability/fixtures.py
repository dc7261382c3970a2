"""Tiny inputs for the reliability runs: a one-convolution ``.tflite`` model with its card (no metadata), a toy
architecture, a toy dataset and a recipe that trains on it. Building the model and training need the ``train``
extra.

The toy architecture (``TOY``: conv + batch norm + PReLU, a pooled branch, a 1-channel mask head) stands in for the
zoo in the killed trainings: what they check (checkpoints, resume) does not depend on the architecture, and the
zoo's graphs take minutes to trace on a loaded 2-core machine, this one seconds. A child process registers it
first with ``CLI_WITH_TOY``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.model_card import InputSpec, ModelCard, OutputSpec, card_path

MODEL_SIZE = 32
TOY = "reliability_toy"
CLI_WITH_TOY = ("import sys; from portrait_sdk.reliability.fixtures import register_toy; register_toy(); "
                "from portrait_sdk.cli import main; sys.exit(main(sys.argv[1:]))")
"""``python -c CLI_WITH_TOY train ...``: the ``portrait-sdk`` command with the toy architecture registered."""
TOY_RECIPE = """\
[model]
name = "{model}"
input_size = [32, 32]

[data]
root = "{root}"
train = "toy/train"
val = "toy/val"

[loss]
objective = "segmentation"

[train]
epochs = {epochs}
batch_size = 4
learning_rate = 1e-3
steps_per_epoch = {steps_per_epoch}
checkpoint_every = {checkpoint_every}
seed = 1
"""


def tiny_model(folder: Path, name: str = "tiny_portrait", task: str = "portrait") -> Path:
    """``folder/<name>.tflite`` + its card (a ``task`` model): foreground = softmax of 6 * (R - B), so red is the
    "person"."""
    from portrait_sdk.export import to_tflite
    from portrait_sdk.keras_env import keras

    inputs = keras.Input((MODEL_SIZE, MODEL_SIZE, 3))
    conv = keras.layers.Conv2D(2, 1)
    model = keras.Model(inputs, keras.layers.Softmax()(conv(inputs)))
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, :, 1] = (6.0, 0.0, -6.0)
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tflite"
    path.write_bytes(to_tflite(model))
    ModelCard(name=name, architecture="tiny", task=task, precision="float32",
              input=InputSpec(MODEL_SIZE, MODEL_SIZE, resize="stretch"), output=OutputSpec()).save(card_path(path))
    return path


def build_toy(input_shape, training_heads: bool = False):
    from portrait_sdk.keras_env import keras

    layers = keras.layers
    image = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(image)
    x = layers.PReLU(shared_axes=[1, 2], name="prelu")(layers.BatchNormalization(momentum=0.5, name="conv_bn")(x))
    half = layers.Conv2D(8, 3, padding="same", activation="relu", name="half")(layers.AveragePooling2D(2)(x))
    x = layers.Concatenate()([x, layers.UpSampling2D(2, interpolation="bilinear")(half)])
    mask = layers.Conv2D(1, 1, name="mask")(x)
    return keras.Model(image, {"mask": mask} if training_heads else mask, name=TOY)


def register_toy() -> None:
    """``TOY`` joins the model registry for the rest of the process (once)."""
    from portrait_sdk.models import registry

    if TOY not in registry.list_models():
        registry.register(registry.ModelSpec(name=TOY, task="portrait", builder=build_toy, description="reliability "
                                             "runs' toy model", default_input_size=(32, 32), output_stride=2))


def toy_recipe(folder: Path, epochs: int, steps_per_epoch: int, checkpoint_every: int, count: int = 8,
               model: str = TOY) -> Path:
    """A toy dataset (``toy_dataset``) and a recipe training ``model`` on it."""
    toy_dataset(folder, count)
    path = folder / "toy.toml"
    path.write_text(TOY_RECIPE.format(model=model, root=folder, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                      checkpoint_every=checkpoint_every))
    return path


def toy_dataset(folder: Path, count: int = 8) -> None:
    """``folder/toy/{train,val}``: ``count`` discs on noise each, in the generic images/ + masks/ folders."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for sub in ("images", "masks"):
            (folder / "toy" / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 120, (40, 48, 3), dtype=np.uint8)
            mask = np.zeros((40, 48), np.uint8)
            cv2.circle(mask, (int(rng.integers(14, 34)), int(rng.integers(14, 26))), int(rng.integers(6, 12)), 255, -1)
            image[mask > 0] += 120
            cv2.imwrite(str(folder / "toy" / split / "images" / f"{i:03d}.png"), image)
            cv2.imwrite(str(folder / "toy" / split / "masks" / f"{i:03d}.png"), mask)
