"""Segmentation and matting metrics on tiny hand-computed cases."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from portrait_sdk.metrics import (MattingMeter, SegmentationMeter, boundary_f_score, confusion_matrix,
                                  connectivity_error, gradient_error, iou, mad, mean_iou, miou, mse, sad)

PRED_A = np.array([[0.9, 0.8], [0.2, 0.1]])  # foreground: top row
LABEL_A = np.array([[1, 0], [1, 0]])  # foreground: left column -> intersection 1, union 3
FULL = np.ones((2, 2))


def test_metrics_module_does_not_import_tensorflow():
    code = "import sys, portrait_sdk.metrics; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_iou():
    assert iou(PRED_A, LABEL_A) == pytest.approx(1 / 3)
    assert iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0  # empty vs empty
    assert iou(np.zeros((2, 2)), LABEL_A) == 0.0
    assert iou(PRED_A, LABEL_A, threshold=0.85) == pytest.approx(1 / 2)  # only 0.9 left: I 1, U 2
    with pytest.raises(ValueError, match="same shape"):
        iou(PRED_A, np.ones((3, 2)))


def test_mean_iou_per_image_and_pooled():
    summary = mean_iou([PRED_A, FULL], [LABEL_A, FULL])
    assert summary.per_image == pytest.approx((1 / 3 + 1) / 2)
    assert summary.pooled == pytest.approx((1 + 4) / (3 + 4))
    with pytest.raises(ValueError):
        mean_iou([PRED_A], [LABEL_A, FULL])


def test_miou_over_classes():
    pred = np.array([[0, 1], [2, 2]])
    label = np.array([[0, 1], [1, 2]])
    # class 0: I 1 / U 1; class 1: I 1 / U 2; class 2: I 1 / U 2
    assert miou(pred, label, num_classes=3) == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert miou(pred, label, num_classes=4) == pytest.approx(2 / 3)  # class 3 is absent from both: left out
    # the ignored pixel (the wrong one) no longer counts: every class perfect
    assert miou(pred, np.array([[0, 1], [255, 2]]), num_classes=3) == pytest.approx(1.0)
    np.testing.assert_array_equal(confusion_matrix(pred, label, 3), [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="class ids"):
        miou(pred, label, num_classes=2)


def test_boundary_f_score():
    pred = np.zeros((6, 6))
    pred[1:5, 1:5] = 1  # 4 x 4 square: 12 boundary pixels
    label = np.zeros((6, 6))
    label[1:5, 1:4] = 1  # 4 x 3 rectangle: 10 boundary pixels
    assert boundary_f_score(pred, pred, tolerance_px=0) == 1.0
    # 8 boundary pixels in common: P = 8/12, R = 8/10, F = 2PR / (P + R) = 8/11
    assert boundary_f_score(pred, label, tolerance_px=0) == pytest.approx(8 / 11)
    # 1 px away everything matches
    assert boundary_f_score(pred, label, tolerance_px=1) == 1.0
    assert boundary_f_score(np.zeros((6, 6)), np.zeros((6, 6))) == 1.0
    assert boundary_f_score(np.zeros((6, 6)), label) == 0.0


def test_segmentation_meter():
    meter = SegmentationMeter()
    with pytest.raises(ValueError, match="no image"):
        meter.result()
    meter.update(PRED_A, LABEL_A)
    meter.update(FULL, FULL)
    result = meter.result()
    assert result["iou"] == pytest.approx(2 / 3) and result["pooled_iou"] == pytest.approx(5 / 7)
    assert result["images"] == 2 and 0.0 <= result["boundary_f"] <= 1.0


ALPHA = np.array([[0.0, 1.0], [0.5, 0.25]])
PRED = np.array([[0.5, 1.0], [0.0, 0.25]])  # |differences| 0.5, 0, 0.5, 0


def test_sad_mad_mse():
    assert sad(PRED, ALPHA) == pytest.approx(1.0 / 1000)
    assert mad(PRED, ALPHA) == pytest.approx(1.0 / 4)
    assert mse(PRED, ALPHA) == pytest.approx((0.25 + 0.25) / 4)
    region = np.array([[True, True], [False, False]])  # only the first 0.5 difference
    assert sad(PRED, ALPHA, region) == pytest.approx(0.5 / 1000)
    assert mse(PRED, ALPHA, region) == pytest.approx(0.25 / 2)
    with pytest.raises(ValueError, match="divide 8-bit mattes by 255"):
        sad(PRED * 255, ALPHA)


def test_gradient_error():
    alpha = np.zeros((12, 12))
    alpha[:, 6:] = 1.0  # a vertical step edge
    assert gradient_error(alpha, alpha) == 0.0
    assert gradient_error(np.zeros_like(alpha), np.zeros_like(alpha)) == 0.0
    blurred = np.clip((np.arange(12) - 3.5) / 5, 0, 1)[None, :].repeat(12, axis=0)  # a soft ramp instead
    error = gradient_error(blurred, alpha)
    assert error > 0 and error == pytest.approx(gradient_error(alpha, blurred))
    far_from_edge = np.zeros_like(alpha, bool)
    far_from_edge[:, :1] = True  # the mattes are flat there: no gradient difference
    assert gradient_error(blurred, alpha, far_from_edge) < error


def test_connectivity_error():
    alpha = np.array([[1.0, 1.0, 0.35, 0.8]])
    pred = np.array([[1.0, 1.0, 0.35, 0.7]])
    assert connectivity_error(alpha, alpha) == 0.0
    # t = 0.1 .. 0.3: every pixel is in the source. t = 0.4: pixel 2 (0.35) cuts pixel 3 off, the source is
    # pixels 0-1, so pixels 2 and 3 get level 0.3; pixels 0-1 stay connected up to 1 -> level 1.
    # d = matte - level: pred (0, 0, 0.05, 0.4), alpha (0, 0, 0.05, 0.5); phi = 1 - d where d >= 0.15:
    # pred (1, 1, 1, 0.6), alpha (1, 1, 1, 0.5) -> sum |diff| = 0.1, / 1000
    assert connectivity_error(pred, alpha) == pytest.approx(0.1 / 1000)


def test_matting_meter():
    meter = MattingMeter()
    meter.update(PRED, ALPHA)
    meter.update(ALPHA, ALPHA)
    result = meter.result()
    assert result["images"] == 2
    assert result["sad"] == pytest.approx(0.5 / 1000) and result["mad"] == pytest.approx(1 / 8)
    assert result["mse"] == pytest.approx(1 / 16)
    assert set(result) == {"sad", "mad", "mse", "gradient", "connectivity", "images"}
