"""Temperature calibration of a warm start's logits (``portrait_sdk.calibration``, ``[model] calibrate_temperature``)."""

from __future__ import annotations

import numpy as np
import pytest
from test_train import make_toy_dataset, recipe_path, toy_registered  # noqa: F401 (fixtures)

from portrait_sdk.calibration import calibrate_temperature, cross_entropy_at, fit_temperature, output_layer
from portrait_sdk.keras_env import keras, tf
from portrait_sdk.recipe import load_recipe


def _over_confident_model(scale: float) -> tuple[keras.Model, keras.Model]:
    """A small conv net and a copy whose output layer is ``scale`` times larger (MediaPipe-like logits)."""
    keras.utils.set_random_seed(1)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    model = keras.Model(image, keras.layers.Conv2D(1, 1, name="mask")(x))
    inflated = keras.models.clone_model(model)
    inflated.set_weights(model.get_weights()[:-2] + [w * scale for w in model.get_weights()[-2:]])
    return model, inflated


def test_fit_temperature_recovers_the_scale_of_over_confident_logits():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20000)
    target = (rng.uniform(size=z.shape) < 1 / (1 + np.exp(-z))).astype(np.float32)  # calibrated at T = 1
    temperature = fit_temperature(40 * z, target)
    assert temperature == pytest.approx(40, rel=0.1)
    assert cross_entropy_at(40 * z, target, temperature) < 0.2 * cross_entropy_at(40 * z, target, 1.0)


def test_calibration_folds_the_temperature_into_the_output_layer_and_keeps_every_decision():
    model, inflated = _over_confident_model(scale=30.0)
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    p = tf.sigmoid(model(images)).numpy()
    batches = [({"image": tf.constant(images)}, {"mask": tf.constant((rng.uniform(size=p.shape) < p) * 1.0)})]
    before = inflated(images).numpy()
    temperature = calibrate_temperature(inflated, batches)
    assert temperature == pytest.approx(30, rel=0.2)
    after = inflated(images).numpy()
    np.testing.assert_allclose(after, before / temperature, rtol=1e-4, atol=1e-4)
    assert np.array_equal(after > 0, before > 0)


def test_a_non_linear_output_layer_is_refused_by_name():
    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.Conv2D(1, 1, activation="sigmoid", name="probability")(image))
    with pytest.raises(ValueError, match="probability.*activation sigmoid"):
        output_layer(model)


def test_recipe_key_calibrates_the_warm_start_before_training(recipe_path):
    from portrait_sdk.train import Trainer

    plain = Trainer(load_recipe(recipe_path), recipe_path.parent / "plain", progress=False).base_model
    recipe_path.write_text(recipe_path.read_text().replace(
        "input_size = [32, 32]", "input_size = [32, 32]\ncalibrate_temperature = true"))
    trainer = Trainer(load_recipe(recipe_path), recipe_path.parent / "run", progress=False)
    kernel, plain_kernel = (m.get_layer("mask").get_weights()[0] for m in (trainer.base_model, plain))
    ratio = plain_kernel / kernel  # the same initial weights (same seed), the output layer divided by T
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-4) and not np.isclose(ratio.flat[0], 1.0)
    # the blend start of [train] wise_ft is the calibrated model
    assert all(np.array_equal(a, b) for a, b in zip(trainer.start_weights, trainer.base_model.get_weights()))
