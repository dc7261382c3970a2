"""Training objectives against values worked out by hand on models whose outputs are fixed functions of the image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from portrait_sdk.keras_env import keras, tf
from portrait_sdk.objectives import make_objective

LN2 = math.log(2.0)


def fixed_model(outputs):
    """A model that ignores its weights: ``outputs(image) -> dict`` of logits (a Lambda per head)."""
    image = keras.Input((16, 16, 3))
    return keras.Model(image, {name: keras.layers.Lambda(fn, name=name)(image) for name, fn in outputs.items()})


def background_logits(image, size=None):
    """(5, -5) everywhere: confidently background, at ``size`` (default: the image's)."""
    shape = tf.shape(image)
    h, w = (shape[1], shape[2]) if size is None else size
    return tf.tile(tf.constant([[[[5.0, -5.0]]]]), [shape[0], h, w, 1])


def test_auxiliary_heads_see_small_objects_as_area_fractions():
    # A 2 x 2 nail in a 16 x 16 label covers a quarter of one 4 x 4 cell of a 1/4 head: thresholded at 0.5 the
    # cell is background and a confident background head would pay (almost) nothing.
    model = fixed_model({"mask": background_logits, "aux_low": lambda x: background_logits(x, (4, 4))})
    objective = make_objective("segmentation", {"boundary": 0.0}, ("aux_low",), hard_pixels=0.25)
    image = tf.zeros((1, 16, 16, 3))
    empty = np.zeros((1, 16, 16, 1), np.float32)
    nail = empty.copy()
    nail[0, 4:6, 4:6] = 1.0
    without = objective(model, {"image": image}, {"mask": tf.constant(empty)}, training=True)["aux"]
    with_nail = objective(model, {"image": image}, {"mask": tf.constant(nail)}, training=True)["aux"]
    # The nail's cell has target 1/4: CE = 1/4 * 10 + softplus(-10) ~ 2.5 (the hardest 4 of 16 cells are kept,
    # the other three cost softplus(-10) each); without it every cell costs softplus(-10) ~ 4.5e-5.
    np.testing.assert_allclose(float(without), math.log1p(math.exp(-10)), rtol=1e-3)
    np.testing.assert_allclose(float(with_nail), (0.25 * 10 + 4 * math.log1p(math.exp(-10))) / 4, rtol=1e-3)


def test_full_resolution_mask_keeps_hard_labels():
    # A 0.4 soft label at full resolution is background (no soft_targets): a confident background head pays ~0.
    model = fixed_model({"mask": background_logits})
    objective = make_objective("segmentation", {"boundary": 0.0, "aux": 0.0})
    labels = tf.fill((1, 16, 16, 1), 0.4)
    terms = objective(model, {"image": tf.zeros((1, 16, 16, 3))}, {"mask": labels}, training=True)
    assert float(terms["mask"]) < 1e-3


def test_portraitnet_objective_sums_both_views_consistency_and_boundary():
    # mask logits (0, 0): CE ln 2 per view against any hard label; the boundary head (0, 0): focal = (1/2)^2 ln 2.
    zeros = lambda x: tf.zeros_like(x[..., :2])  # noqa: E731
    model = fixed_model({"mask": zeros, "boundary": zeros})
    objective = make_objective("portraitnet")
    image = tf.random.uniform((2, 16, 16, 3), seed=1)
    targets = {"mask": tf.ones((2, 16, 16, 1)), "boundary": tf.zeros((2, 16, 16, 1))}
    terms = objective(model, {"image": image, "image_prime": image}, targets, training=True)
    np.testing.assert_allclose(float(terms["mask"]), 2 * LN2, rtol=1e-5)
    np.testing.assert_allclose(float(terms["consistency"]), 0.0, atol=1e-6)  # identical outputs
    np.testing.assert_allclose(float(terms["boundary"]), 0.25 * LN2, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), 2 * LN2 + 0.1 * 0.25 * LN2, rtol=1e-5)
    # Different outputs for the two views: the KL term becomes positive and enters with weight 2.
    model = fixed_model({"mask": lambda x: tf.concat([tf.zeros_like(x[..., :1]), 4 * x[..., :1] - 2], -1)})
    terms = objective(model, {"image": image, "image_prime": 1 - image}, targets, training=True)
    assert float(terms["consistency"]) > 0.01
    np.testing.assert_allclose(float(terms["loss"]), float(terms["mask"]) + 2 * float(terms["consistency"]),
                               rtol=1e-5)


def test_matting_objective_is_the_weighted_mean_of_its_terms():
    # The model predicts alpha = sigmoid(logit) with logit = 20 * (red - 0.5): the true alpha is the red channel
    # thresholded, so a perfect-alpha model pays ~0 L1; a shifted one pays.
    def logits(x):
        fg = 20 * (x[..., :1] - 0.5)
        return tf.concat([tf.zeros_like(fg), fg], -1)

    model = fixed_model({"mask": logits})
    red = np.zeros((1, 16, 16, 3), np.float32)
    red[0, :, 8:, 0] = 1.0
    alpha = red[..., :1]
    objective = make_objective("matting")
    terms = objective(model, {"image": tf.constant(red)}, {"mask": tf.constant(alpha)}, training=True)
    assert float(terms["alpha"]) < 1e-4 and float(terms["compositional"]) < 1e-4
    expected = sum(float(terms[k]) for k in ("alpha", "compositional", "gradient", "kd")) / 4  # no aux head
    np.testing.assert_allclose(float(terms["loss"]), expected, rtol=1e-5)
    # Wrong alpha (inverted): alpha L1 = 1 per pixel; without the compositional and gradient terms the loss is
    # (alpha + kd) / 2.
    ablation = make_objective("matting", {"compositional": 0.0, "gradient": 0.0})
    terms = ablation(model, {"image": tf.constant(red)}, {"mask": tf.constant(1 - alpha)}, training=True)
    np.testing.assert_allclose(float(terms["alpha"]), 1.0, rtol=1e-3)
    np.testing.assert_allclose(float(terms["loss"]), (float(terms["alpha"]) + float(terms["kd"])) / 2, rtol=1e-5)


def test_unknown_weight_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown loss weight 'mask_l1'"):
        make_objective("segmentation", {"mask_l1": 1.0})
    with pytest.raises(ValueError, match="hard_pixels"):
        make_objective("segmentation", criterion="lovasz", hard_pixels=0.25)
