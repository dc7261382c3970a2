"""Each loss against a value worked out by hand on a tiny tensor (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from portrait_sdk.keras_env import tf
from portrait_sdk.losses import (alpha_l1, boundary_band, boundary_target, compositional_l1, consistency_kl,
                                 cross_entropy, focal_loss, gradient_l1, huber_direction_loss, loss_max_pooling,
                                 lovasz_hinge)

LN3 = math.log(3.0)


def close(tensor, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(tensor), expected, rtol=tol, atol=tol)


def logits(values) -> tf.Tensor:
    """[H, W, C] nested list -> [1, H, W, C] float tensor."""
    return tf.constant([values], tf.float32)


# 1 x 1 x 3 two-class batch: pixel 0 label 1 with logits (0, ln 3) -> p = 3/4; pixel 1 label 0 with (0, 0) -> p = 1/2;
# pixel 2 ignored (255) with a confidently wrong logit that must not count.
SOFTMAX_LOGITS = logits([[[0.0, LN3], [0.0, 0.0], [9.0, -9.0]]])
SOFTMAX_LABELS = tf.constant([[[1, 0, 255]]])


def test_cross_entropy_softmax_ignores_void_pixels():
    # (-ln 3/4 - ln 1/2) / 2 valid pixels
    close(cross_entropy(SOFTMAX_LABELS, SOFTMAX_LOGITS), (math.log(4 / 3) + math.log(2)) / 2)


def test_cross_entropy_sigmoid_and_label_channel():
    # logit 0, label 1 -> ln 2; logit ln 3, label 0 -> -ln(1 - 3/4) = ln 4; labels given as [B, H, W, 1]
    labels = tf.constant([[[[1], [0]]]])
    close(cross_entropy(labels, logits([[[0.0], [LN3]]])), (math.log(2) + math.log(4)) / 2)


def test_cross_entropy_per_pixel_map_is_zero_on_ignored_pixels():
    per_pixel = cross_entropy(SOFTMAX_LABELS, SOFTMAX_LOGITS, reduction="none")
    assert per_pixel.shape == (1, 1, 3)
    close(per_pixel, [[[math.log(4 / 3), math.log(2), 0.0]]])
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(SOFTMAX_LABELS, SOFTMAX_LOGITS, reduction="sum")


def test_cross_entropy_soft_labels_same_for_sigmoid_and_softmax():
    # alpha 1/2 against logit 0: -(1/2 ln 1/2 + 1/2 ln 1/2) = ln 2; alpha 1/4 against logit ln 3 (p = 3/4):
    # -(1/4 ln 3/4 + 3/4 ln 1/4)
    alpha = tf.constant([[[0.5, 0.25]]])
    expected = (math.log(2) - (0.25 * math.log(0.75) + 0.75 * math.log(0.25))) / 2
    close(cross_entropy(alpha, logits([[[0.0], [LN3]]])), expected)
    close(cross_entropy(alpha, logits([[[0.0, 0.0], [0.0, LN3]]])), expected)


def test_focal_loss_down_weights_easy_pixels():
    # pixel 0: p_t = 3/4 -> (1/4)^2 ln 4/3; pixel 1: p_t = 1/2 -> (1/2)^2 ln 2; pixel 2 ignored
    expected = (0.0625 * math.log(4 / 3) + 0.25 * math.log(2)) / 2
    close(focal_loss(SOFTMAX_LABELS, SOFTMAX_LOGITS), expected)
    close(focal_loss(SOFTMAX_LABELS, SOFTMAX_LOGITS, gamma=0.0), cross_entropy(SOFTMAX_LABELS, SOFTMAX_LOGITS))


def test_focal_loss_gradient_is_finite_with_ignored_and_saturated_pixels():
    z = tf.Variable(logits([[[0.0, 200.0], [0.0, 0.0]]]))
    with tf.GradientTape() as tape:
        loss = focal_loss(tf.constant([[[1, 255]]]), z, gamma=0.0)
    assert np.isfinite(tape.gradient(loss, z).numpy()).all()


def test_consistency_kl_value_temperature_and_detached_target():
    # p = softmax(0, ln 3) = (1/4, 3/4), q = softmax(0, 0) = (1/2, 1/2); mean over the 2 elements of p (ln p - ln q)
    kl = (0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2
    target, student = tf.Variable(logits([[[0.0, LN3]]])), logits([[[0.0, 0.0]]])
    with tf.GradientTape() as tape:
        loss = consistency_kl(target, student)
    close(loss, kl)
    assert tape.gradient(loss, target) is None
    # T = 2 on doubled logits gives the same distributions, times T^2 = 4
    close(consistency_kl(logits([[[0.0, 2 * LN3]]]), student, temperature=2.0), 4 * kl)
    # one sigmoid logit z is the softmax pair (0, z)
    close(consistency_kl(logits([[[LN3]]]), logits([[[0.0]]])), kl)


def test_lovasz_hinge_per_image_and_batch():
    # image A: labels (1, 1, 0, void), logits (0, 0.5, 0.25, -10): hinge errors 1, 0.5, 1.25 (void excluded).
    #   sorted 1.25 (bg), 1 (fg), 0.5 (fg); 2 positives: intersection 2, 1, 0; union 3, 3, 3;
    #   Jaccard 1/3, 2/3, 1 -> gradient 1/3 each -> loss (1.25 + 1 + 0.5) / 3.
    # image B: all background, logits (1, -1, -2, -3): errors 2, 0, -1, -2; no positives -> gradient (1, 0, 0, 0)
    #   -> loss relu(2) = 2.
    labels = tf.constant([[[1, 1, 0, 255]], [[0, 0, 0, 0]]])
    z = tf.constant([[[0.0, 0.5, 0.25, -10.0]], [[1.0, -1.0, -2.0, -3.0]]])[..., None]
    loss_a = 2.75 / 3
    close(lovasz_hinge(labels[:1], z[:1]), loss_a)
    close(lovasz_hinge(labels, z), (loss_a + 2.0) / 2)
    # whole batch at once: positive errors sorted 2 (bg), 1.25 (bg), 1 (fg), 0.5 (fg); intersection 2, 2, 1, 0;
    # union 3, 4, 4, 4; Jaccard 1/3, 1/2, 3/4, 1 -> gradient 1/3, 1/6, 1/4, 1/4 -> 2/3 + 1.25/6 + 1/4 + 0.5/4 = 1.25
    close(lovasz_hinge(labels, z, per_image=False), 1.25)
    with pytest.raises(ValueError, match="one logit channel"):
        lovasz_hinge(labels, tf.concat([z, z], axis=-1))


def test_boundary_band_and_target():
    # 4 x 4 mask, foreground the top-left 2 x 2; 3 x 3 kernel: dilation covers the top-left 3 x 3, erosion keeps
    # only (0, 0) (the image border is not background), so the band is that 3 x 3 minus (0, 0).
    mask = np.zeros((1, 4, 4), np.int32)
    mask[0, :2, :2] = 1
    band = np.array([[0, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], np.float32)
    close(boundary_band(tf.constant(mask), 3)[0], band)
    close(boundary_band(tf.constant(mask[..., None]), 1)[0], np.zeros((4, 4)))
    target = boundary_target(tf.constant(mask[..., None]), 3).numpy()
    assert target.shape == (1, 4, 4, 1) and target.dtype == np.int32
    np.testing.assert_array_equal(target[0, ..., 0], np.where(band > 0, mask[0], 255))
    with pytest.raises(ValueError, match="kernel_size"):
        boundary_band(tf.constant(mask), 0)


ALPHA = tf.constant([[[[0.0], [1.0]], [[0.5], [0.25]]]])
PRED = tf.constant([[[[0.5], [1.0]], [[0.0], [0.25]]]])


def test_alpha_and_compositional_l1():
    # |differences| 0.5, 0, 0.5, 0 over 4 pixels
    close(alpha_l1(ALPHA, PRED), 0.25)
    # every pixel has colour (1, 0.5, 0): sum of |d| * (1 + 0.5 + 0) = 1.5 over 4 x 3 elements
    image = tf.tile(tf.constant([[[[1.0, 0.5, 0.0]]]]), [1, 2, 2, 1])
    close(compositional_l1(ALPHA, PRED, image), 1.5 / 12)
    with pytest.raises(ValueError, match="differ in shape"):
        alpha_l1(ALPHA, PRED[..., 0])


def test_gradient_l1():
    # the difference is a unit impulse in the middle of a 3 x 3 matte: each Sobel/8 response spreads it over the
    # whole 3 x 3 with absolute sum (1 + 2 + 1 + 1 + 2 + 1) / 8 = 1; mean over 3 x 3 x 2 elements = 2 / 18
    alpha = tf.zeros([1, 3, 3, 1])
    pred = tf.constant(np.pad([[1.0]], 1)[None, ..., None], tf.float32)
    close(gradient_l1(alpha, pred), 2 / 18)
    close(gradient_l1(pred, pred), 0.0)


def test_loss_max_pooling():
    losses = tf.constant([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 8.0]]])
    # keep half: image 0 -> (4 + 3) / 2, image 1 -> (8 + 0) / 2; batch mean 3.75
    close(loss_max_pooling(losses, keep_fraction=0.5), 3.75)
    # only image 0 with the 4 marked invalid: ceil(0.5 * 3) = 2 kept -> (3 + 2) / 2
    valid = tf.constant([[[True, True], [True, False]]])
    close(loss_max_pooling(losses[:1], keep_fraction=0.5, valid=valid), 2.5)
    close(loss_max_pooling(losses, keep_fraction=1.0), (2.5 + 2.0) / 2)  # plain mean
    with pytest.raises(ValueError, match="keep_fraction"):
        loss_max_pooling(losses, keep_fraction=0.0)


def test_loss_max_pooling_composes_with_per_pixel_cross_entropy():
    per_pixel = cross_entropy(SOFTMAX_LABELS, SOFTMAX_LOGITS, reduction="none")
    # the hardest valid pixel (ln 2) alone
    close(loss_max_pooling(per_pixel, keep_fraction=0.5, valid=SOFTMAX_LABELS != 255), math.log(2))


def test_huber_direction_loss_only_on_mask():
    target = tf.constant([[[[1.0, 0.0]] * 4]])  # [1, 1, 4, 2]
    pred = tf.constant([[[[1.0, 0.0], [-1.0, 0.0], [0.5, 0.5], [-9.0, 9.0]]]])
    # pixel 0: 0; pixel 1: d = (-2, 0) -> 1 * (2 - 1/2) = 1.5; pixel 2: d = (-0.5, 0.5) -> 0.125 + 0.125;
    # pixel 3 outside the mask
    mask = tf.constant([[[1, 1, 1, 0]]])
    close(huber_direction_loss(target, pred, mask), (0 + 1.5 + 0.25) / 3)
    close(huber_direction_loss(target, pred, tf.zeros([1, 1, 4])), 0.0)
    with pytest.raises(ValueError, match=r"\[B, H, W, 2\]"):
        huber_direction_loss(target[..., :1], pred[..., :1], mask)


def test_losses_trace_with_unknown_batch_and_size():
    """model.fit runs losses in a graph whose batch and image size are unknown."""
    spec = tf.TensorSpec([None, None, None, 1])
    int_spec = tf.TensorSpec([None, None, None, 1], tf.int32)

    @tf.function(input_signature=[int_spec, spec])
    def total(labels, z):
        per_pixel = cross_entropy(labels, z, reduction="none")
        return (lovasz_hinge(boundary_target(labels, 3), z) + loss_max_pooling(per_pixel, valid=labels[..., 0] != 255)
                + focal_loss(labels, z))

    labels = tf.constant([[[[1], [0]], [[255], [1]]]], tf.int32)
    assert np.isfinite(total(labels, tf.ones([1, 2, 2, 1])).numpy())
