"""Training objectives: how each model family turns a batch into its loss terms.

An objective is called as ``objective(model, features, targets, training) -> {"loss": total, term: value, ...}``
on the dicts the data pipeline produces (``portrait_sdk.data.pipeline``), and knows how to read the model's
foreground probability for validation (``probability``). Recipes pick one by name and may override its weights.

- ``portraitnet``: CE on both views + 2 * consistency KL + 0.1 * boundary focal loss (PortraitNet's code).
- ``segmentation``: CE or Lovasz hinge on the mask, + 0.5 * the same criterion on the boundary band
  (ExtremeC3Net's boundary-aware loss), + every auxiliary head against labels at its own resolution.
- ``matting``: MMNet's alpha L1, compositional L1, gradient L1, soft-target CE on the logits and on the 1/16
  auxiliary head, summed and divided by the sum of the weights.
"""

from __future__ import annotations

from portrait_sdk import losses
from portrait_sdk.keras_env import tf


def as_dict(outputs) -> dict:
    return outputs if isinstance(outputs, dict) else {"mask": outputs}


def foreground_probability(logits: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] logits -> [B, H, W] foreground probability (sigmoid for C = 1, softmax channel 1 otherwise)."""
    if logits.shape[-1] == 1:
        return tf.sigmoid(logits[..., 0])
    return tf.nn.softmax(logits, axis=-1)[..., 1]


def resize_labels(labels: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Soft [B, H, W, 1] labels resized (area) to the spatial size of ``like``; pass-through when equal."""
    if labels.shape[1:3] == like.shape[1:3]:
        return labels
    return tf.image.resize(labels, like.shape[1:3], method="area")


def hard_labels(soft: tf.Tensor) -> tf.Tensor:
    return tf.cast(soft >= 0.5, tf.int32)


class Objective:
    """``auxiliary_heads``: the model's training-only heads scored against the resized mask (its spec's)."""

    defaults: dict[str, float] = {}

    def __init__(self, weights: dict | None = None, auxiliary_heads: tuple[str, ...] = ()):
        self.auxiliary_heads = tuple(auxiliary_heads)
        unknown = sorted(set(weights or {}) - set(self.defaults))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown loss weight {unknown[0]!r}; "
                             f"valid: {', '.join(self.defaults)}")
        self.weights = {**self.defaults, **(weights or {})}

    def probability(self, outputs) -> tf.Tensor:
        return foreground_probability(as_dict(outputs)["mask"])

    def total(self, terms: dict) -> dict:
        terms["loss"] = tf.add_n([self.weights[k] * v for k, v in terms.items()])
        return terms


class PortraitNetObjective(Objective):
    """CE(A') + CE(A) + 2 KL(p_A || p_A') + 0.1 focal(boundary on A'); one view when the batch has no A'."""

    defaults = {"mask": 1.0, "consistency": 2.0, "boundary": 0.1}

    def __call__(self, model, features, targets, training):
        labels = hard_labels(targets["mask"])
        out_a = as_dict(model(features["image"], training=training))
        terms = {"mask": losses.cross_entropy(labels, out_a["mask"])}
        head = out_a
        if "image_prime" in features:
            out_b = as_dict(model(features["image_prime"], training=training))
            terms["mask"] += losses.cross_entropy(labels, out_b["mask"])
            terms["consistency"] = losses.consistency_kl(out_a["mask"], out_b["mask"])
            head = out_b
        if "boundary" in head and "boundary" in targets:
            terms["boundary"] = losses.focal_loss(hard_labels(targets["boundary"]), head["boundary"], gamma=2.0)
        return self.total(terms)


class SegmentationObjective(Objective):
    """Mask criterion + boundary-band term + auxiliary heads, with CE or Lovasz hinge.

    Options: ``criterion`` ("ce" or "lovasz"), ``boundary_kernel`` (band size at full resolution, 0 for none; the
    auxiliary heads use it scaled to their resolution, at least 3, as ExtremeC3Net's 15 / 5), ``hard_pixels``
    (CE only: keep this fraction of the hardest pixels per image, the nail segmenter's loss max-pooling; 0 for
    all pixels), ``soft_targets`` (CE only: the label's soft values, e.g. a teacher's alpha, are the target
    probabilities instead of being thresholded at 0.5).
    """

    defaults = {"mask": 1.0, "boundary": 0.5, "aux": 0.4}

    def __init__(self, weights=None, auxiliary_heads=(), criterion: str = "ce", boundary_kernel: int = 0,
                 hard_pixels: float = 0.0, soft_targets: bool = False):
        if criterion not in ("ce", "lovasz"):
            raise ValueError(f"criterion must be 'ce' or 'lovasz', got {criterion!r}")
        if soft_targets and (criterion != "ce" or hard_pixels):
            raise ValueError("soft_targets needs criterion 'ce' without hard_pixels")
        self.soft_targets = soft_targets
        if hard_pixels and criterion != "ce":
            raise ValueError("hard_pixels (loss max-pooling) needs criterion 'ce'")
        super().__init__(weights, auxiliary_heads)
        self.criterion = {"lovasz": losses.lovasz_hinge, "ce": losses.cross_entropy}[criterion]
        if hard_pixels:
            self.criterion = lambda labels, logits: losses.loss_max_pooling(
                losses.cross_entropy(labels, logits, reduction="none"), hard_pixels, valid=labels[..., 0] != 255)
        self.criterion_name = criterion
        self.boundary_kernel = boundary_kernel

    def _head_terms(self, soft_labels, logits, full_width):
        """A head's criterion (and boundary term) against the labels resized to its resolution.

        A head below the label resolution (an auxiliary head) is scored against the area fraction of each cell,
        not that fraction thresholded at 0.5, when the criterion takes soft targets (CE): thresholding at 1/16
        erases small objects (nails: 45 % of their pixels, and every nail of a quarter of the images)."""
        resized = resize_labels(soft_labels, logits)
        labels = hard_labels(resized)
        soft = self.soft_targets or (self.criterion_name == "ce" and resized.shape[1:3] != soft_labels.shape[1:3])
        loss = self.criterion(resized if soft else labels, logits)
        boundary = tf.constant(0.0)
        if self.boundary_kernel:
            kernel = max(3, round(self.boundary_kernel * logits.shape[2] / full_width) | 1)
            boundary = self.criterion(losses.boundary_target(labels, kernel), logits)
        return loss, boundary

    def __call__(self, model, features, targets, training):
        outputs = as_dict(model(features["image"], training=training))
        width = features["image"].shape[2]
        mask, boundary = self._head_terms(targets["mask"], outputs["mask"], width)
        terms = {"mask": mask, "boundary": boundary, "aux": tf.constant(0.0)}
        for name in self.auxiliary_heads:
            if name in outputs:
                aux, aux_boundary = self._head_terms(targets["mask"], outputs[name], width)
                terms["aux"] += aux + self.weights["boundary"] * aux_boundary
        return self.total(terms)


class MattingObjective(Objective):
    """MMNet: (alpha + compositional + gradient + kd + aux) / sum of the weights.

    Setting ``compositional`` and ``gradient`` to 0 gives the ablation the training issue asks for.
    """

    defaults = {"alpha": 1.0, "compositional": 1.0, "gradient": 1.0, "kd": 1.0, "aux": 1.0}

    def __call__(self, model, features, targets, training):
        outputs = as_dict(model(features["image"], training=training))
        alpha = targets["mask"]
        pred = foreground_probability(outputs["mask"])[..., None]
        terms = {
            "alpha": losses.alpha_l1(alpha, pred),
            "compositional": losses.compositional_l1(alpha, pred, features["image"][..., :3]),
            "gradient": losses.gradient_l1(alpha, pred),
            "kd": losses.cross_entropy(alpha, outputs["mask"]),
        }
        if "aux" in outputs:
            terms["aux"] = losses.cross_entropy(resize_labels(alpha, outputs["aux"]), outputs["aux"])
        terms = self.total(terms)
        terms["loss"] /= sum(self.weights[k] for k in terms if k != "loss")
        return terms


OBJECTIVES = {"portraitnet": PortraitNetObjective, "segmentation": SegmentationObjective,
              "matting": MattingObjective}


def make_objective(name: str, weights: dict | None = None, auxiliary_heads: tuple[str, ...] = (),
                   **options) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid choices: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](weights, auxiliary_heads, **options)
