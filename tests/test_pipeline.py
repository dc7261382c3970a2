"""tf.data pipeline: determinism under a seed, element structure per mode, validation order, backgrounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from portrait_sdk.data import augment
from portrait_sdk.data.pipeline import AugmentConfig, make_dataset

SIZE = (16, 20)


class FakePairs:
    """The dataset interface the pipeline relies on: ``len`` and ``load(i) -> (RGB uint8, float32 label)``."""

    def __init__(self, n: int = 5, shape: tuple[int, int] = (24, 30)):
        rng = np.random.default_rng(123)
        self.images = [rng.integers(0, 256, shape + (3,), dtype=np.uint8) for _ in range(n)]
        self.labels = []
        for i in range(n):
            label = np.zeros(shape, np.float32)
            label[4 + i:18, 6:20 + i] = 1.0
            label[18:20, 6:20] = 0.5  # a soft edge, as in an alpha matte
            self.labels.append(label)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]


def _batches(dataset, count: int) -> list:
    return [(
        {k: v.numpy() for k, v in features.items()},
        {k: v.numpy() for k, v in targets.items()},
    ) for features, targets in itertools.islice(dataset, count)]


def _assert_equal(a: list, b: list) -> None:
    for (fa, ta), (fb, tb) in zip(a, b, strict=True):
        for key in fa:
            np.testing.assert_array_equal(fa[key], fb[key])
        for key in ta:
            np.testing.assert_array_equal(ta[key], tb[key])


def test_same_seed_same_batches_regardless_of_parallelism_and_different_seed_differs():
    ds = FakePairs()
    make = lambda seed, calls: make_dataset(ds, size=SIZE, batch_size=2, training=True, seed=seed,  # noqa: E731
                                            num_parallel_calls=calls)
    reference = _batches(make(7, 1), 3)
    _assert_equal(reference, _batches(make(7, 3), 3))
    other = _batches(make(8, 1), 3)
    assert not np.array_equal(reference[0][0]["image"], other[0][0]["image"])


def test_training_stream_repeats_with_new_augmentations_each_epoch():
    ds = FakePairs(n=4)
    dataset = make_dataset(ds, size=SIZE, batch_size=4, training=True, seed=0, shuffle=False)
    (epoch0, _), (epoch1, _) = _batches(dataset, 2)
    assert not np.array_equal(epoch0["image"], epoch1["image"])


@pytest.mark.parametrize("mode, channels, feature_keys", [
    ("segmentation", 3, {"image"}),
    ("matting", 3, {"image"}),
    ("video", 4, {"image"}),
    ("consistency", 3, {"image", "image_prime"}),
])
def test_element_structure_per_mode(mode, channels, feature_keys):
    dataset = make_dataset(FakePairs(), size=SIZE, batch_size=2, training=True, seed=1, mode=mode,
                           boundary_width=4)
    features_spec, targets_spec = dataset.element_spec
    assert set(features_spec) == feature_keys and set(targets_spec) == {"mask", "boundary"}
    assert features_spec["image"].shape.as_list() == [2, *SIZE, channels]
    assert targets_spec["mask"].shape.as_list() == [2, *SIZE, 1]
    [(features, targets)] = _batches(dataset, 1)
    for array in [*features.values(), *targets.values()]:
        assert array.dtype == np.float32 and 0.0 <= array.min() and array.max() <= 1.0
    assert set(np.unique(targets["boundary"])) <= {0.0, 1.0} and targets["boundary"].any()
    if mode == "consistency":  # A′ is A plus texture: same geometry, different pixels
        assert not np.array_equal(features["image"], features["image_prime"])


def test_validation_is_resize_only_in_dataset_order_with_the_partial_batch():
    ds = FakePairs(n=3)
    dataset = make_dataset(ds, size=SIZE, batch_size=2, training=False, mode="video")
    batches = _batches(dataset, 10)
    assert [f["image"].shape[0] for f, _ in batches] == [2, 1]
    images = np.concatenate([f["image"] for f, _ in batches])
    masks = np.concatenate([t["mask"] for _, t in batches])
    for i in range(3):
        image, label = augment.resize_pair(*ds.load(i), SIZE, fit="pad")
        np.testing.assert_allclose(images[i, ..., :3], image / 255.0, atol=1e-6)
        np.testing.assert_array_equal(masks[i, ..., 0], label)
    assert not images[..., 3].any(), "validation prior must be empty"


def test_matting_composites_onto_the_given_backgrounds():
    ds = FakePairs(n=2)
    ds.labels = [np.zeros_like(label) for label in ds.labels]  # alpha 0: the result is the background alone
    colour = np.array([10, 200, 30], np.uint8)
    config = AugmentConfig(matting=augment.MattingAugConfig(composite_p=1.0))
    dataset = make_dataset(ds, size=SIZE, batch_size=2, training=True, mode="matting", config=config,
                           backgrounds=[np.broadcast_to(colour, (8, 9, 3)).copy()])
    [(features, _)] = _batches(dataset, 1)
    np.testing.assert_allclose(features["image"], np.broadcast_to(colour / 255.0, features["image"].shape),
                               atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mode"):
        make_dataset(FakePairs(), size=SIZE, batch_size=2, training=True, mode="depth")
    with pytest.raises(ValueError, match="backgrounds"):
        make_dataset(FakePairs(), size=SIZE, batch_size=2, training=True, mode="segmentation", backgrounds=[])
    with pytest.raises(ValueError, match="empty"):
        make_dataset(FakePairs(n=0), size=SIZE, batch_size=2, training=True)


def test_segmentation_backgrounds_give_negatives_and_pastes():
    from portrait_sdk.data.augment import CompositeConfig
    from portrait_sdk.data.pipeline import AugmentConfig

    backgrounds = [np.zeros((20, 30, 3), np.uint8)]
    negatives = make_dataset(FakePairs(), size=SIZE, batch_size=2, training=True, mode="segmentation",
                             backgrounds=backgrounds, config=AugmentConfig(composite=CompositeConfig(negative_p=1.0)))
    for _, targets in negatives.take(2):
        assert float(targets["mask"].numpy().max()) == 0.0
    plain = make_dataset(FakePairs(), size=SIZE, batch_size=2, training=True, mode="segmentation",
                         backgrounds=backgrounds)  # composite probabilities default to 0: samples unchanged
    assert all(float(t["mask"].numpy().max()) > 0 for _, t in plain.take(2))


def test_start_resumes_the_stream_exactly_across_an_epoch_boundary():
    ds = FakePairs()  # 5 samples, batch 2: batch 3 straddles epochs 0 and 1
    make = lambda start: make_dataset(ds, size=SIZE, batch_size=2, training=True, seed=3,  # noqa: E731
                                      start=start)
    full = _batches(make(0), 5)
    _assert_equal(full[2:], _batches(make(4), 3))
