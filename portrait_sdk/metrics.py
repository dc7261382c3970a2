"""Validation metrics for segmentation and matting, on H x W numpy arrays (no TensorFlow: the runtime uses this too).

Segmentation inputs are probabilities, mattes or 0/1 masks, binarised as foreground where value > ``threshold``
(0.5: PortraitNet's rule for a softmax output); class maps are integer ids. Matting inputs are alpha mattes with
values in [0, 1] (divide 8-bit mattes by 255 first). Every function takes the prediction first, then the label.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple

import cv2
import numpy as np


def _pair(pred: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.ndim != 2 or pred.shape != label.shape:
        raise ValueError(f"prediction and label must be H x W arrays of the same shape, got {pred.shape} and "
                         f"{label.shape}")
    return pred, label


def _binary_pair(pred: np.ndarray, label: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    pred, label = _pair(pred, label)
    return pred > threshold, label > threshold


def _ratio(numerator: float, denominator: float) -> float:
    """IoU-style ratio; 1.0 when both are empty (nothing to find and nothing found is a perfect result)."""
    return 1.0 if denominator == 0 else float(numerator) / float(denominator)


def _intersection_union(pred: np.ndarray, label: np.ndarray, threshold: float) -> tuple[int, int]:
    pred, label = _binary_pair(pred, label, threshold)
    return int(np.count_nonzero(pred & label)), int(np.count_nonzero(pred | label))


def iou(pred: np.ndarray, label: np.ndarray, threshold: float = 0.5) -> float:
    """Foreground intersection over union; 1.0 when both masks are empty (as PortraitNet's ``calcIOU``)."""
    return _ratio(*_intersection_union(pred, label, threshold))


class IoUSummary(NamedTuple):
    per_image: float  # mean of the per-image IoUs: the "mIoU" PortraitNet / ExtremeC3Net report on EG1800
    pooled: float  # total intersection / total union over the set: big images weigh more, empty ones nothing


def _summarise(counts: list[tuple[int, int]]) -> IoUSummary:
    if not counts:
        raise ValueError("no image to evaluate")
    intersections, unions = zip(*counts)
    return IoUSummary(float(np.mean([_ratio(i, u) for i, u in counts])), _ratio(sum(intersections), sum(unions)))


def mean_iou(preds: Iterable[np.ndarray], labels: Iterable[np.ndarray], threshold: float = 0.5) -> IoUSummary:
    """Foreground IoU over a set of images, both as the mean of per-image IoUs and pooled over all pixels."""
    return _summarise([_intersection_union(p, l, threshold) for p, l in zip(preds, labels, strict=True)])


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_label: int = 255) -> np.ndarray:
    """[num_classes, num_classes] pixel counts, rows = label class, columns = predicted class.

    Pixels whose label is ``ignore_label`` are skipped. Matrices of several images add up to the pooled one.
    """
    pred, label = _pair(pred, label)
    keep = label != ignore_label
    pred, label = pred[keep].astype(np.int64), label[keep].astype(np.int64)
    for name, ids in (("label", label), ("prediction", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"{name} class ids must be in [0, {num_classes}), got [{ids.min()}, {ids.max()}]")
    return np.bincount(label * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def miou(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_label: int = 255) -> float:
    """Mean over classes of the class IoU for two class maps; classes absent from both maps are left out.

    For a pooled mIoU over a set, sum ``confusion_matrix`` over the images and use ``miou_from_confusion``.
    """
    return miou_from_confusion(confusion_matrix(pred, label, num_classes, ignore_label))


def miou_from_confusion(confusion: np.ndarray) -> float:
    """Mean class IoU TP / (TP + FP + FN) of a confusion matrix, over classes present in labels or predictions.

    1.0 when no class is present at all (an empty evaluation has nothing wrong).
    """
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive
    present = union > 0
    return float(np.mean(true_positive[present] / union[present])) if present.any() else 1.0


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a binary mask: foreground pixels with a background pixel among their 8 neighbours.

    cv2.erode's default border leaves the image edge out, as DAVIS's ``seg2bmap``.
    """
    mask = mask.astype(np.uint8)
    return (mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).astype(bool)


def _matched(boundary: np.ndarray, reference: np.ndarray, tolerance_px: float) -> int:
    """How many ``boundary`` pixels lie within ``tolerance_px`` (Euclidean) of a ``reference`` boundary pixel."""
    distance = cv2.distanceTransform((~reference).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return int(np.count_nonzero(boundary & (distance <= tolerance_px)))


def boundary_f_score(pred: np.ndarray, label: np.ndarray, tolerance_px: float | None = None,
                     threshold: float = 0.5) -> float:
    """Boundary F-measure (Csurka et al. BMVC 2013; DAVIS's F, Perazzi et al. CVPR 2016).

    Precision = share of predicted boundary pixels within ``tolerance_px`` of a label boundary pixel, recall = the
    converse, F = 2PR / (P + R). The default tolerance is DAVIS's: ceil(0.008 x image diagonal). As in DAVIS, an
    empty boundary on both sides scores 1, on one side only 0.
    """
    pred, label = _binary_pair(pred, label, threshold)
    if tolerance_px is None:
        tolerance_px = math.ceil(0.008 * math.hypot(*pred.shape))
    pred_edge, label_edge = _boundary(pred), _boundary(label)
    n_pred, n_label = np.count_nonzero(pred_edge), np.count_nonzero(label_edge)
    if n_pred == 0 or n_label == 0:
        return float(n_pred == n_label)
    precision = _matched(pred_edge, label_edge, tolerance_px) / n_pred
    recall = _matched(label_edge, pred_edge, tolerance_px) / n_label
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


# ---- matting (Rhemann et al. CVPR 2009, alphamatting.com; as in the Deep Image Matting evaluation code) ----

def _alpha_pair(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Float64 prediction, ground truth and evaluated region (bool, whole image when ``region`` is None)."""
    pred, alpha = _pair(pred, alpha)
    for name, matte in (("prediction", pred), ("alpha", alpha)):
        if matte.size and (matte.min() < 0 or matte.max() > 1):
            raise ValueError(f"{name} matte values must be in [0, 1], got [{matte.min()}, {matte.max()}] "
                             "(divide 8-bit mattes by 255; clip resampling overshoot)")
    if region is None:
        region = np.ones(pred.shape, bool)
    else:
        region = np.asarray(region, bool)
        if region.shape != pred.shape:
            raise ValueError(f"region shape {region.shape} differs from the mattes' {pred.shape}")
    return pred.astype(np.float64), alpha.astype(np.float64), region


def sad(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences over ``region`` (e.g. a trimap's unknown pixels; default the whole image),
    divided by 1000 as customary since Deep Image Matting (its large images give large sums)."""
    pred, alpha, region = _alpha_pair(pred, alpha, region)
    return float(np.abs(pred - alpha)[region].sum()) / 1000.0


def mad(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean absolute difference over ``region`` (MMNet's MAD); 0 for an empty region."""
    pred, alpha, region = _alpha_pair(pred, alpha, region)
    return float(np.abs(pred - alpha)[region].mean()) if region.any() else 0.0


def mse(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared difference over ``region`` (not scaled); 0 for an empty region."""
    pred, alpha, region = _alpha_pair(pred, alpha, region)
    return float(np.square(pred - alpha)[region].mean()) if region.any() else 0.0


def _gaussian_gradient(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """x / y derivative-of-Gaussian responses, as the alphamatting.com ``gaussgradient``: kernel
    g(u) * g'(v) of half size ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma 0.01))), scaled to unit L2 norm,
    convolved with replicated borders."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 1e-2)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-u ** 2 / (2.0 * sigma ** 2)) / (sigma * math.sqrt(2.0 * math.pi))
    kernel_x = np.outer(gauss, -u * gauss / sigma ** 2)  # rows: Gaussian in y; columns: its derivative in x
    kernel_x /= np.sqrt(np.sum(kernel_x ** 2))
    # filter2D correlates; flipping the kernel makes it a convolution as in the reference code.
    gx = cv2.filter2D(image, cv2.CV_64F, cv2.flip(kernel_x, -1), borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(image, cv2.CV_64F, cv2.flip(kernel_x.T, -1), borderType=cv2.BORDER_REPLICATE)
    return gx, gy


def gradient_error(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None = None,
                   sigma: float = 1.4) -> float:
    """Gradient error: sum over ``region`` of (|grad pred| - |grad alpha|)^2, gradients by first-derivative-of-
    Gaussian filters (sigma 1.4), divided by 1000 like SAD (the Deep Image Matting evaluation convention).

    Mattes are used in [0, 1] as the Python ports of that code do (/255), not min-max rescaled like MATLAB's
    ``mat2gray``. MMNet's own "gradient error" differs: the per-pixel mean of |grad pred - grad alpha|.
    """
    pred, alpha, region = _alpha_pair(pred, alpha, region)
    magnitudes = [np.hypot(*_gaussian_gradient(matte, sigma)) for matte in (pred, alpha)]
    return float(np.square(magnitudes[0] - magnitudes[1])[region].sum()) / 1000.0


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of a binary mask (all False when the mask is empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def connectivity_error(pred: np.ndarray, alpha: np.ndarray, region: np.ndarray | None = None,
                       step: float = 0.1) -> float:
    """Connectivity error (Rhemann et al. 2009), divided by 1000 like SAD.

    For thresholds t = step, 2 step, ..., 1 the source region is the largest 4-connected component of
    (pred >= t) & (alpha >= t); each pixel's level l is the last threshold before it left the source (1 if it
    never did). With d = matte - l, phi = 1 - d where d >= 0.15, else 1; the error is sum |phi_pred - phi_alpha|
    over ``region``.
    """
    pred, alpha, region = _alpha_pair(pred, alpha, region)
    thresholds = np.linspace(0.0, 1.0, round(1.0 / step) + 1)
    level = np.full(pred.shape, -1.0)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:]):
        source = _largest_component((pred >= threshold) & (alpha >= threshold))
        level[(level == -1.0) & ~source] = previous
    level[level == -1.0] = 1.0

    def phi(matte: np.ndarray) -> np.ndarray:
        d = matte - level
        return 1.0 - d * (d >= 0.15)

    return float(np.abs(phi(pred) - phi(alpha))[region].sum()) / 1000.0


class SegmentationMeter:
    """Accumulates binary-segmentation metrics over a validation set, one ``update`` per image."""

    def __init__(self, threshold: float = 0.5, boundary_tolerance_px: float | None = None):
        self.threshold = threshold
        self.boundary_tolerance_px = boundary_tolerance_px
        self._counts: list[tuple[int, int]] = []
        self._boundary_f: list[float] = []

    def update(self, pred: np.ndarray, label: np.ndarray) -> None:
        """Add one H x W prediction / label pair."""
        self._counts.append(_intersection_union(pred, label, self.threshold))
        self._boundary_f.append(boundary_f_score(pred, label, self.boundary_tolerance_px, self.threshold))

    def result(self) -> dict[str, float]:
        """``iou``: mean per-image IoU; ``pooled_iou``; ``boundary_f``: mean boundary F; ``images``: count."""
        summary = _summarise(self._counts)
        return {"iou": summary.per_image, "pooled_iou": summary.pooled,
                "boundary_f": float(np.mean(self._boundary_f)), "images": len(self._counts)}


class MattingMeter:
    """Accumulates matting errors over a validation set (per-image values, averaged), one ``update`` per image."""

    METRICS = {"sad": sad, "mad": mad, "mse": mse, "gradient": gradient_error, "connectivity": connectivity_error}

    def __init__(self):
        self._values: dict[str, list[float]] = {name: [] for name in self.METRICS}

    def update(self, pred: np.ndarray, label: np.ndarray, region: np.ndarray | None = None) -> None:
        """Add one H x W predicted matte and its ground truth (values in [0, 1]), optionally over a region."""
        for name, metric in self.METRICS.items():
            self._values[name].append(metric(pred, label, region))

    def result(self) -> dict[str, float]:
        """Mean of each metric over the images (``sad``, ``mad``, ``mse``, ``gradient``, ``connectivity``) and
        ``images``, the count."""
        count = len(self._values["sad"])
        if count == 0:
            raise ValueError("no image to evaluate")
        return {**{name: float(np.mean(values)) for name, values in self._values.items()}, "images": count}
