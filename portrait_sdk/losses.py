"""Training losses of the zoo's models (PortraitNet, MMNet, ExtremeC3Net, nail segmenter), on batched NHWC tensors.

Conventions shared by every loss:

- ``logits`` are [B, H, W, C]: C = 1 is one sigmoid logit (foreground), C >= 2 are softmax logits.
- integer ``labels`` are class ids shaped [B, H, W] or [B, H, W, 1]; pixels equal to ``ignore_label`` count nowhere.
- floating ``labels`` / ``alpha`` are soft foreground probabilities in [0, 1] (mattes).
- every loss returns a scalar: the mean over the valid pixels (0 when there are none), computed in float32.

PortraitNet's boundary *target* (mask contours drawn 4 px thick) is made on the fly by the data pipeline, with
``portrait_sdk.data.augment.contour_map``; ``focal_loss`` is its loss.
"""

from __future__ import annotations

import numpy as np

from portrait_sdk.keras_env import tf

_REDUCTIONS = ("mean", "none")


def _drop_channel(x: tf.Tensor, name: str) -> tf.Tensor:
    """[B, H, W, 1] -> [B, H, W]; [B, H, W] is returned as is."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 4 and x.shape[-1] == 1:
        return x[..., 0]
    if x.shape.rank != 3:
        raise ValueError(f"{name} must be [B, H, W] or [B, H, W, 1], got shape {x.shape}")
    return x


def _logits4(logits: tf.Tensor) -> tf.Tensor:
    logits = tf.convert_to_tensor(logits)
    if logits.shape.rank != 4 or logits.shape[-1] is None:
        raise ValueError(f"logits must be [B, H, W, C] with a known C, got shape {logits.shape}")
    return tf.cast(logits, tf.float32)


def _masked_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Sum of ``values * weights`` over the sum of ``weights``; 0 when no weight is set."""
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def _per_pixel_ce(labels: tf.Tensor, logits: tf.Tensor, ignore_label: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-pixel cross-entropy [B, H, W] and the valid-pixel weights (1 or 0).

    Ignored pixels are scored against class 0 and left for the caller to mask: their loss stays finite, so
    masking by multiplication never meets 0 * inf in the gradient (e.g. of (1 - p_t)^gamma at p_t = 1).
    """
    logits = _logits4(logits)
    labels = _drop_channel(labels, "labels")
    num_classes = logits.shape[-1]
    if labels.dtype.is_floating:
        if num_classes > 2:
            raise ValueError(f"soft (floating) labels need 1 or 2 logit channels, got {num_classes}")
        target = tf.cast(labels, tf.float32)
        valid = tf.ones_like(target)
        if num_classes == 1:
            return tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits[..., 0]), valid
        soft = tf.stack([1.0 - target, target], axis=-1)
        return tf.nn.softmax_cross_entropy_with_logits(labels=soft, logits=logits), valid
    valid = tf.not_equal(labels, tf.cast(ignore_label, labels.dtype))
    safe = tf.where(valid, labels, tf.zeros_like(labels))
    if num_classes == 1:
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(safe, tf.float32), logits=logits[..., 0])
    else:
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(safe, tf.int32), logits=logits)
    return loss, tf.cast(valid, tf.float32)


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor, ignore_label: int = 255,
                  reduction: str = "mean") -> tf.Tensor:
    """Softmax cross-entropy (C >= 2) or sigmoid binary cross-entropy (C = 1), ignoring ``ignore_label`` pixels.

    Integer labels are class ids (PortraitNet's mask loss: 2-class CE, ignore index 255). Floating labels are a soft
    foreground probability, the target being (1 - alpha, alpha): MMNet's "kd" and "aux" terms against the matte.
    ``reduction="mean"`` gives the mean over valid pixels; ``"none"`` the per-pixel map [B, H, W], 0 on ignored
    pixels, e.g. to feed ``loss_max_pooling``.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    loss, valid = _per_pixel_ce(labels, logits, ignore_label)
    return loss * valid if reduction == "none" else _masked_mean(loss, valid)


def focal_loss(labels: tf.Tensor, logits: tf.Tensor, gamma: float = 2.0, ignore_label: int = 255) -> tf.Tensor:
    """Focal loss (Lin et al. 2017) without the alpha balance: mean of -(1 - p_t)^gamma * log(p_t).

    PortraitNet's boundary head loss (gamma = 2, mean over pixels, weight 0.1). p_t = exp(-CE), so the same
    function serves sigmoid and softmax logits. PortraitNet's code detaches the modulating factor (1 - p_t)^gamma;
    here it is differentiated as in the paper: the value is the same, the gradient is the standard one.
    """
    ce, valid = _per_pixel_ce(labels, logits, ignore_label)
    # 1 - p_t via expm1 (accurate when p_t is close to 1), kept above 0 so that x^gamma has a finite gradient when
    # a saturated logit gives p_t = 1 exactly and gamma < 1.
    one_minus_pt = tf.maximum(-tf.math.expm1(-ce), np.finfo(np.float32).tiny)
    modulation = tf.pow(one_minus_pt, gamma)
    return _masked_mean(modulation * ce, valid)


def _two_class(logits: tf.Tensor) -> tf.Tensor:
    """A sigmoid logit z as the equivalent softmax pair (0, z); C >= 2 logits unchanged."""
    return tf.concat([tf.zeros_like(logits), logits], axis=-1) if logits.shape[-1] == 1 else logits


def consistency_kl(target_logits: tf.Tensor, student_logits: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """PortraitNet's consistency constraint: T^2 * KL(p_target || p_student), the target detached.

    p = softmax(logits / T). As in PortraitNet (PyTorch ``KLDivLoss`` with its default mean reduction), the
    elementwise terms p * (log p - log q) are averaged over every element, classes included, so a 2-class map
    gives half the per-pixel KL. A sigmoid logit is treated as its 2-class softmax pair, so C = 1 and the
    equivalent C = 2 model give the same loss. PortraitNet: target = prediction on the deformed image A,
    student = prediction on A plus texture augmentation, T = 1, weight 2.
    """
    target, student = _logits4(target_logits), _logits4(student_logits)
    if target.shape != student.shape:
        raise ValueError(f"target and student logits differ in shape: {target.shape} vs {student.shape}")
    log_p = tf.nn.log_softmax(_two_class(tf.stop_gradient(target)) / temperature, axis=-1)
    log_q = tf.nn.log_softmax(_two_class(student) / temperature, axis=-1)
    return tf.reduce_mean(tf.exp(log_p) * (log_p - log_q)) * temperature ** 2


def _lovasz_grad(fg_sorted: tf.Tensor) -> tf.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at the sorted errors (Berman et al. 2018, Alg. 1),
    for each row of ``fg_sorted`` (foreground indicators sorted by decreasing error)."""
    positives = tf.reduce_sum(fg_sorted, axis=-1, keepdims=True)
    intersection = positives - tf.cumsum(fg_sorted, axis=-1)
    union = positives + tf.cumsum(1.0 - fg_sorted, axis=-1)
    jaccard = 1.0 - intersection / union
    return tf.concat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)


def lovasz_hinge(labels: tf.Tensor, logits: tf.Tensor, ignore_label: int = 255, per_image: bool = True) -> tf.Tensor:
    """Lovasz hinge loss on one foreground logit (Berman, Rannen Triki & Blaschko, CVPR 2018).

    The hinge errors 1 - z * (2y - 1) are sorted in decreasing order and weighted by the gradient of the Lovasz
    extension of the Jaccard loss. ``per_image``: one loss per image, averaged (ExtremeC3Net's criterion, which
    predicts foreground where the logit > 0); otherwise one loss over the whole batch. Ignored pixels get error 0,
    so after the sort they sit behind every positive error and add nothing (and they are not foreground, so they
    do not change the positive count); an image with no valid pixel gives 0, like the reference code.
    """
    logits = _drop_channel(_logits4(logits), "logits (Lovasz hinge takes one logit channel)")
    labels = _drop_channel(labels, "labels")
    valid = tf.not_equal(labels, tf.cast(ignore_label, labels.dtype))
    fg = tf.cast(tf.logical_and(valid, tf.equal(labels, tf.cast(1, labels.dtype))), tf.float32)
    errors = tf.where(valid, 1.0 - logits * (2.0 * fg - 1.0), tf.zeros_like(logits))
    rows = tf.shape(errors)[0] if per_image else 1
    errors, fg = tf.reshape(errors, [rows, -1]), tf.reshape(fg, [rows, -1])
    errors_sorted, order = tf.math.top_k(errors, k=tf.shape(errors)[1])
    grad = tf.stop_gradient(_lovasz_grad(tf.gather(fg, order, batch_dims=1)))
    return tf.reduce_mean(tf.reduce_sum(tf.nn.relu(errors_sorted) * grad, axis=-1))


def boundary_band(mask: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """Pixels whose ``kernel_size`` x ``kernel_size`` neighbourhood is not constant: dilate(mask) - erode(mask).

    ``mask`` is a binary mask or a label map, [B, H, W] or [B, H, W, 1]; the result is a float {0, 1} map
    [B, H, W]. Dilation and erosion are stride-1 max-pools (erosion = -maxpool(-x)), which run on the GPU; 'SAME'
    max-pooling ignores the padding, so the image border is not a boundary (as with cv2.dilate / cv2.erode).
    """
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    x = tf.cast(_drop_channel(mask, "mask"), tf.float32)[..., None]
    dilated = tf.nn.max_pool2d(x, kernel_size, strides=1, padding="SAME")
    eroded = -tf.nn.max_pool2d(-x, kernel_size, strides=1, padding="SAME")
    return tf.cast(dilated > eroded, tf.float32)[..., 0]


def boundary_target(labels: tf.Tensor, kernel_size: int, ignore_label: int = 255) -> tf.Tensor:
    """ExtremeC3Net's edge target: ``labels`` inside ``boundary_band(labels, kernel_size)``, ``ignore_label`` outside.

    ExtremeC3Net uses a 5 x 5 kernel on the 1/4-resolution stage-1 labels and 15 x 15 at full resolution (stage 2),
    and adds 0.5 * loss(pred, edge_target) to the mask loss with the same criterion. The band is taken on the raw
    labels, so the rim of an ignored region counts as boundary too. The result has the shape and dtype of ``labels``.
    """
    labels = tf.convert_to_tensor(labels)
    band = tf.reshape(boundary_band(labels, kernel_size) > 0, tf.shape(labels))
    return tf.where(band, labels, tf.cast(tf.fill(tf.shape(labels), ignore_label), labels.dtype))


def _alpha_pair(alpha: tf.Tensor, pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    alpha, pred = tf.cast(alpha, tf.float32), tf.cast(pred, tf.float32)
    if alpha.shape != pred.shape:
        raise ValueError(f"alpha and prediction differ in shape: {alpha.shape} vs {pred.shape}")
    return alpha, pred


def alpha_l1(alpha: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """MMNet's alpha loss: mean |pred - alpha| over all pixels."""
    alpha, pred = _alpha_pair(alpha, pred)
    return tf.reduce_mean(tf.abs(pred - alpha))


def compositional_l1(alpha: tf.Tensor, pred: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """MMNet's compositional loss: mean |pred * I - alpha * I| over every pixel and colour channel.

    ``alpha`` / ``pred`` are [B, H, W, 1], ``image`` is [B, H, W, 3] with values in [0, 1]; only the foreground
    composite is compared (no background term), as in MMNet. The official code divides an image that is already
    in [0, 1] by 255 a second time, making this term about 255 x smaller than the others; we deliberately do NOT
    copy that quirk, so with equal weights this term matters as the paper intends.
    """
    alpha, pred = _alpha_pair(alpha, pred)
    image = tf.cast(image, tf.float32)
    return tf.reduce_mean(tf.abs((pred - alpha) * image))


_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 8.0


def gradient_l1(alpha: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """MMNet's gradient loss: mean L1 between the Sobel / 8 x and y responses of ``pred`` and ``alpha``.

    Inputs [B, H, W, 1]. As in MMNet: fixed 3 x 3 Sobel kernels divided by 8, 'SAME' zero padding, the mean taken
    over both response channels.
    """
    alpha, pred = _alpha_pair(alpha, pred)
    if alpha.shape.rank != 4 or alpha.shape[-1] != 1:
        raise ValueError(f"gradient_l1 needs [B, H, W, 1] mattes, got shape {alpha.shape}")
    kernels = tf.constant(np.stack([_SOBEL_X, _SOBEL_X.T], axis=-1)[:, :, None, :])  # [3, 3, 1, 2]
    # Convolution is linear: the difference of the responses is the response of the difference.
    return tf.reduce_mean(tf.abs(tf.nn.conv2d(pred - alpha, kernels, strides=1, padding="SAME")))


def loss_max_pooling(per_pixel_loss: tf.Tensor, keep_fraction: float = 0.25,
                     valid: tf.Tensor | None = None) -> tf.Tensor:
    """Hard-pixel mining: per image, the mean of the largest ``keep_fraction`` of the per-pixel losses.

    This is the simple OHEM form of loss max-pooling (Rota Bulo, Neuhold & Kontschieder, CVPR 2017), the "LMP"
    the nail segmenter (Duke et al. 2019) trains with: LMP weights each pixel's loss by the worst-case weighting
    in a norm-bounded set; with the p = 1 norm and a cap on each weight that weighting spreads equally over the
    hardest pixels, i.e. a fixed fraction of them. The paper's general p-norm weighting and the nail paper's
    exact settings are not reproduced. ``per_pixel_loss`` is [B, H, W] (e.g.
    ``cross_entropy(..., reduction="none")``); ``valid`` (same shape, bool or 0/1) restricts the pool, e.g. to
    ``labels != ignore_label``. Per image, ceil(keep_fraction * valid pixels) pixels are kept (at least one); the
    per-image means are averaged over the batch (an image with no valid pixel adds 0).
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    loss = tf.cast(_drop_channel(per_pixel_loss, "per_pixel_loss"), tf.float32)
    flat = tf.reshape(loss, [tf.shape(loss)[0], -1])
    mask = tf.ones_like(flat, tf.bool) if valid is None else tf.reshape(tf.cast(valid, tf.bool), tf.shape(flat))
    n_valid = tf.reduce_sum(tf.cast(mask, tf.float32), axis=-1)
    keep = tf.minimum(tf.maximum(tf.math.ceil(keep_fraction * n_valid), 1.0), n_valid)
    ranked = tf.sort(tf.where(mask, flat, tf.fill(tf.shape(flat), flat.dtype.min)), axis=-1, direction="DESCENDING")
    rank = tf.cast(tf.range(tf.shape(flat)[1]), tf.float32)[None, :]
    kept = tf.where(rank < keep[:, None], ranked, tf.zeros_like(ranked))
    return tf.reduce_mean(tf.math.divide_no_nan(tf.reduce_sum(kept, axis=-1), keep))


def huber_direction_loss(target_dir: tf.Tensor, pred_dir: tf.Tensor, mask: tf.Tensor,
                         delta: float = 1.0) -> tf.Tensor:
    """Huber loss on the nail segmenter's 2-channel base-to-tip direction field, over ``mask`` pixels only.

    Per pixel: the sum over the two channels of huber(d) = d^2 / 2 if |d| <= delta else delta * (|d| - delta / 2),
    with d = pred - target; then the mean over pixels where ``mask`` > 0.5 ([B, H, W] or [B, H, W, 1]); 0 when the
    mask is empty.
    """
    target, pred = tf.cast(target_dir, tf.float32), tf.cast(pred_dir, tf.float32)
    if target.shape != pred.shape or target.shape.rank != 4 or target.shape[-1] != 2:
        raise ValueError(f"direction fields must both be [B, H, W, 2], got {target.shape} and {pred.shape}")
    error = tf.abs(pred - target)
    huber = tf.where(error <= delta, 0.5 * tf.square(error), delta * (error - 0.5 * delta))
    weights = tf.cast(tf.cast(_drop_channel(mask, "mask"), tf.float32) > 0.5, tf.float32)
    return _masked_mean(tf.reduce_sum(huber, axis=-1), weights)
