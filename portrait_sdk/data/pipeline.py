"""tf.data input pipeline: load, augment (``augment.py``, numpy + OpenCV) and batch on the fly.

Graph: index stream → (per epoch, optionally a seeded permutation) → ``map`` of a ``tf.numpy_function`` that loads
and augments one sample → ``batch`` → ``prefetch``. The dataset object only needs ``len(ds)`` and
``ds.load(i) -> (RGB uint8 H×W×3, float32 H×W label in [0, 1])``.

**Determinism.** Each sample's augmentation uses its own ``np.random.default_rng((seed, epoch, index))``, and the
per-epoch order is ``tf.random.experimental.stateless_shuffle`` seeded with (seed, epoch); with ``deterministic``
maps the batches are a pure function of (dataset, seed, arguments), however many parallel calls run. The epoch
number only advances inside an endless (``repeat``) stream, so train with ``repeat=True`` (the default when
training) and ``steps_per_epoch``: a finite dataset that Keras re-iterates would replay epoch 0's augmentations.

**Elements** are ``(features, targets)`` dicts; ``B`` is the batch, ``H, W = size``; all float32, images in [0, 1]:

=============  ==========================================  ==================================================
mode           features                                    targets
=============  ==========================================  ==================================================
segmentation   ``image`` [B,H,W,3]                         ``mask`` [B,H,W,1]
matting        ``image`` [B,H,W,3]                         ``mask`` [B,H,W,1] (the alpha)
video          ``image`` [B,H,W,4] (channel 3: prior)      ``mask`` [B,H,W,1]
consistency    ``image`` [B,H,W,3] (A), ``image_prime``    ``mask`` [B,H,W,1] (shared by both views)
               [B,H,W,3] (A′ = A + texture)
=============  ==========================================  ==================================================

With ``boundary_width`` set, ``targets["boundary"]`` [B,H,W,1] is PortraitNet's contour map of the final label.

**Training augmentation** per mode: segmentation and video: ``deform`` + ``texture`` (video: plus
``video_sample``'s prior between the two); consistency: ``two_views``; matting: optional background swap
(``composite_on_background``, with ``backgrounds``) then ``mmnet_augment`` (no texture, as MMNet).
**Validation** (``training=False``): ``resize_pair`` only (matting: stretch as MMNet; other modes: the deform
config's ``fit``, letterbox by default), dataset order, no shuffling, the last partial batch kept; video gets an
empty prior (the first-frame case), consistency gets A′ = A.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import cv2
import numpy as np

from portrait_sdk.data import augment
from portrait_sdk.keras_env import tf

MODES = ("segmentation", "matting", "video", "consistency")

Background = np.ndarray | str | Path


class PairDataset(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class AugmentConfig:
    """The augmentation settings of every mode, in one place (each mode reads the ones it uses)."""

    deform: augment.DeformConfig = field(default_factory=augment.DeformConfig)
    texture: augment.TextureConfig = field(default_factory=augment.TextureConfig)
    matting: augment.MattingAugConfig = field(default_factory=augment.MattingAugConfig)
    prior: augment.PriorConfig = field(default_factory=augment.PriorConfig)
    composite: augment.CompositeConfig = field(default_factory=augment.CompositeConfig)


def load_background(item: Background) -> np.ndarray:
    """An RGB uint8 background from an array (returned as is) or an image file."""
    if isinstance(item, np.ndarray):
        return item
    image = cv2.imread(str(item), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"background image {item} is missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=512)
def _cached_background(path: str) -> np.ndarray:
    return load_background(path)


def _background_picker(backgrounds: Sequence[Background]) -> Callable[[int], np.ndarray] | None:
    """Background ``i``, loaded once per file (the same few hundred photos serve every sample)."""
    if not backgrounds:
        return None
    return lambda i: backgrounds[i] if isinstance(backgrounds[i], np.ndarray) else _cached_background(
        str(backgrounds[i]))


def field_names(mode: str, boundary: bool) -> tuple[str, ...]:
    """The numpy arrays one sample produces, in order (images uint8 H×W×3, the rest float32 H×W)."""
    names = {"segmentation": ("image", "mask"), "matting": ("image", "mask"),
             "video": ("image", "prior", "mask"), "consistency": ("image", "image_prime", "mask")}[mode]
    return names + (("boundary",) if boundary else ())


def make_sample(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, *, mode: str, size: tuple[int, int],
                training: bool, config: AugmentConfig = AugmentConfig(),
                backgrounds: Sequence[Background] = (), boundary_width: int | None = None) -> dict[str, np.ndarray]:
    """One sample's arrays (``field_names`` order) from a loaded (image, label) pair."""
    out: dict[str, np.ndarray] = {}
    if not training:
        fit = "stretch" if mode == "matting" else config.deform.fit
        image, label = augment.resize_pair(image, label, size, fit)
        if mode == "video":
            out["prior"] = np.zeros_like(label)
        if mode == "consistency":
            out["image_prime"] = image
    elif mode == "matting":
        if backgrounds and rng.random() < config.matting.composite_p:
            background = load_background(backgrounds[rng.integers(len(backgrounds))])
            image = augment.composite_on_background(image, label, background, rng)
        image, label = augment.mmnet_augment(image, label, rng, size, config.matting)
    elif mode == "consistency":
        image, label = augment.background_variety(image, label, _background_picker(backgrounds),
                                                  len(backgrounds), rng, config.composite)
        image, out["image_prime"], label = augment.two_views(image, label, rng, size, config.deform,
                                                             config.texture)
    else:
        image, label = augment.background_variety(image, label, _background_picker(backgrounds),
                                                  len(backgrounds), rng, config.composite)
        image, label = augment.deform(image, label, rng, size, config.deform)
        if mode == "video":
            image, label, out["prior"] = augment.video_sample(image, label, rng, config.prior)
        image = augment.texture(image, rng, config.texture)
    out["image"], out["mask"] = image, label
    if boundary_width is not None:
        out["boundary"] = augment.contour_map(label, boundary_width)
    return out


def _loader(ds: PairDataset, seed: int, names: tuple[str, ...], **sample_kwargs: Any) -> Callable:
    """The numpy side of the map: (epoch, index) → the sample's arrays, with rng seeded by (seed, epoch, index)."""

    def load(epoch: np.int64, index: np.int64) -> list[np.ndarray]:
        image, label = ds.load(int(index))
        where = f"{type(ds).__name__}.load({int(index)})"
        augment.check_pair(image, label, where)
        rng = np.random.default_rng((seed, int(epoch), int(index)))
        arrays = make_sample(image, label, rng, **sample_kwargs)
        return [arrays[name] for name in names]

    return load


def _index_stream(n: int, seed: int, shuffle: bool, repeat: bool) -> tf.data.Dataset:
    """(epoch, index) pairs: every index once per epoch, in a stateless permutation seeded by (seed, epoch)."""
    epochs = tf.data.Dataset.range(np.iinfo(np.int64).max if repeat else 1)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                    epoch]))
        return tf.data.Dataset.from_tensor_slices(order).map(lambda i: (epoch, i))

    return epochs.flat_map(one_epoch)


def _to_model_io(fields: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """uint8 images → float32 in [0, 1] (prior appended as channel 3); H×W labels → H×W×1."""
    features = {}
    for name in ("image", "image_prime"):
        if name in fields:
            features[name] = tf.cast(fields[name], tf.float32) / 255.0
    if "prior" in fields:
        features["image"] = tf.concat([features["image"], fields["prior"][..., None]], axis=-1)
    targets = {name: fields[name][..., None] for name in ("mask", "boundary") if name in fields}
    return features, targets


def make_dataset(ds: PairDataset, *, size: tuple[int, int], batch_size: int, training: bool, seed: int = 0,
                 mode: str = "segmentation", backgrounds: Sequence[Background] | None = None,
                 boundary_width: int | None = None, shuffle: bool | None = None,
                 num_parallel_calls: int = tf.data.AUTOTUNE, repeat: bool | None = None,
                 config: AugmentConfig = AugmentConfig(), start: int = 0) -> tf.data.Dataset:
    """A batched ``(features, targets)`` dataset (see the module docstring for the structure per mode).

    ``shuffle`` and ``repeat`` default to ``training``; training batches drop the last partial batch so the batch
    dimension is static. ``backgrounds``: arrays or image paths to composite foregrounds onto (matting: ``config.matting``; other
    modes: ``config.composite``'s negatives and pastes).
    ``start`` skips that many samples of the stream before anything is loaded (a resumed run passes
    ``step * batch_size`` and continues with exactly the batches the killed run would have seen).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    size = augment.check_size(size)
    n = len(ds)
    if n == 0:
        raise ValueError(f"dataset {type(ds).__name__} is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if backgrounds is not None and len(backgrounds) == 0:
        raise ValueError(f"backgrounds must be a non-empty sequence (got none for mode {mode!r})")
    shuffle = training if shuffle is None else shuffle
    repeat = training if repeat is None else repeat

    names = field_names(mode, boundary_width is not None)
    load = _loader(ds, seed, names, mode=mode, size=size, training=training, config=config,
                   backgrounds=tuple(backgrounds or ()), boundary_width=boundary_width)
    dtypes = [tf.uint8 if name.startswith("image") else tf.float32 for name in names]

    def load_and_shape(epoch: tf.Tensor, index: tf.Tensor):
        arrays = tf.numpy_function(load, [epoch, index], dtypes, stateful=False)
        for name, array in zip(names, arrays):
            array.set_shape(size + ((3,) if name.startswith("image") else ()))
        return _to_model_io(dict(zip(names, arrays)))

    options = tf.data.Options()
    options.deterministic = True
    return (_index_stream(n, seed, shuffle, repeat).skip(start)
            .map(load_and_shape, num_parallel_calls=num_parallel_calls, deterministic=True)
            .batch(batch_size, drop_remainder=training)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options))
