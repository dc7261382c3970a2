"""Warm starts and data options of the trainer: ``[model] pretrained`` (.tflite weights), ``[data] extra_train``,
background compositing and negatives (``[data] composite``), and soft targets."""

from __future__ import annotations

import numpy as np
import pytest
from test_train import make_toy_dataset, recipe_path, toy_registered  # noqa: F401 (fixtures)
from toy_model import NAME, build_toy

from portrait_sdk.data import augment
from portrait_sdk.recipe import RecipeError, load_recipe

TOY_WEIGHTED = ["full", "full_prelu", "half", "concat_prelu", "mask"]  # the toy's export order (BN folded)


@pytest.fixture()
def toy_with_mapping(monkeypatch, toy_registered):
    from dataclasses import replace

    from portrait_sdk.models import registry

    monkeypatch.setitem(registry._REGISTRY, NAME, replace(registry._REGISTRY[NAME],
                                                          pretrained_layers=lambda model: TOY_WEIGHTED))


def _trainer(path):
    from portrait_sdk.train import Trainer

    return Trainer(load_recipe(path), path.parent / "run", progress=False)


def test_pretrained_tflite_warm_starts_the_trainer_model(recipe_path, toy_with_mapping):
    from portrait_sdk.export import to_tflite
    from portrait_sdk.keras_env import keras

    keras.utils.set_random_seed(5)
    source = build_toy((32, 32, 3))
    rng = np.random.default_rng(0)
    source.set_weights([w + np.abs(rng.normal(0, 0.2, w.shape)).astype(np.float32) for w in source.get_weights()])
    (recipe_path.parent / "source.tflite").write_bytes(to_tflite(source))
    recipe_path.write_text(recipe_path.read_text().replace(
        "input_size = [32, 32]", 'input_size = [32, 32]\npretrained = "source.tflite"'))
    model = _trainer(recipe_path).base_model
    # The BN after the concatenation is no conv's folded BN: it is not in the file's weighted ops, so copy it.
    model.get_layer("concat_bn").set_weights(source.get_layer("concat_bn").get_weights())
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x)["mask"].numpy(), source(x).numpy(), atol=1e-4)
    # the convs' folded BNs were re-estimated on training images: training mode now starts close to inference
    gamma = model.get_layer("full_bn").get_weights()[0]
    assert not np.allclose(gamma, 1.0)


def test_pretrained_without_a_mapping_is_a_recipe_error(recipe_path, tmp_path):
    recipe_path.write_text(recipe_path.read_text().replace(
        'input_size = [32, 32]', 'input_size = [32, 32]\npretrained = "none.tflite"'))
    with pytest.raises(RecipeError, match=r"toy.toml: \[model\] pretrained: toy has no mapping"):
        _trainer(recipe_path)


def test_extra_train_folders_are_appended(recipe_path, tmp_path):
    extra = tmp_path / "extra"
    make_toy_dataset(extra, count=3)
    recipe_path.write_text(recipe_path.read_text().replace(
        'val = "toy/val"', f'val = "toy/val"\nextra_train = ["{extra / "toy" / "train"}"]'))
    trainer = _trainer(recipe_path)
    assert len(trainer.train_data) == 8 + 3
    assert sum(str(extra) in str(s.image) for s in trainer.train_data) == 3


def test_bad_composite_or_prior_is_a_recipe_error(recipe_path):
    text = recipe_path.read_text()
    for bad, message in (("composite = { p = 0.9, negative_p = 0.3 }", "p \\+ negative_p"),
                         ("composite = { q = 1 }", "unexpected keyword argument 'q'"),
                         ('prior = { kinds = [["none", 1.0]] }', "PriorConfig.kinds")):
        recipe_path.write_text(text.replace('val = "toy/val"', f'val = "toy/val"\n{bad}'))
        with pytest.raises(RecipeError, match=message):
            _trainer(recipe_path)


def _pair():
    image = np.full((40, 60, 3), 200, np.uint8)
    label = np.zeros((40, 60), np.float32)
    label[10:30, 20:40] = 1.0
    return image, label


BACKGROUND = np.zeros((50, 50, 3), np.uint8)  # black: pasted foreground pixels are the only bright ones


def test_negative_is_a_background_with_an_empty_label():
    image, label = _pair()
    out, empty = augment.background_variety(image, label, lambda i: BACKGROUND, 1, np.random.default_rng(0),
                                            augment.CompositeConfig(negative_p=1.0))
    assert out.shape == image.shape and out.max() == 0 and empty.shape == label.shape and empty.max() == 0


@pytest.mark.parametrize("seed", range(4))
def test_paste_scales_and_moves_the_foreground_with_its_label(seed):
    image, label = _pair()
    out, placed = augment.background_variety(image, label, lambda i: BACKGROUND, 1, np.random.default_rng(seed),
                                             augment.CompositeConfig(p=1.0, scale=(0.5, 0.5)))
    assert out.shape == image.shape and placed.shape == label.shape
    assert placed.sum() == pytest.approx(label.sum() * 0.25, rel=0.15)
    ys, xs = np.nonzero(placed > 0.5)
    assert ys.max() - ys.min() + 1 == pytest.approx(10, abs=1) and xs.max() - xs.min() + 1 == pytest.approx(10, abs=1)
    # the image is the background outside the pasted photo and the photo (200) under its label
    assert out[placed > 0.99].min() >= 190
    pasted = np.zeros(label.shape, bool)
    rows, cols = np.nonzero(placed > 0)
    assert out[~np.isin(np.arange(40), rows)].max() == 0 or cols.size == 0


def test_no_backgrounds_or_zero_probability_leaves_the_pair():
    image, label = _pair()
    for pick, config in ((None, augment.CompositeConfig(p=1.0)), (lambda i: BACKGROUND, augment.CompositeConfig())):
        out, same = augment.background_variety(image, label, pick, 1, np.random.default_rng(0), config)
        assert out is image and same is label


def test_soft_targets_use_the_alpha_not_its_threshold():
    from portrait_sdk.keras_env import tf
    from portrait_sdk.objectives import make_objective

    alpha = tf.constant(np.full((1, 4, 4, 1), 0.7, np.float32))
    logits = tf.constant(np.full((1, 4, 4, 1), np.log(0.7 / 0.3), np.float32))  # predicts exactly 0.7

    def model(x, training):
        return logits

    features, targets = {"image": tf.zeros((1, 4, 4, 3))}, {"mask": alpha}
    soft = make_objective("segmentation", {"boundary": 0.0, "aux": 0.0}, soft_targets=True)
    hard = make_objective("segmentation", {"boundary": 0.0, "aux": 0.0})
    entropy = -(0.7 * np.log(0.7) + 0.3 * np.log(0.3))  # the minimum of CE against 0.7
    assert float(soft(model, features, targets, True)["mask"]) == pytest.approx(entropy, rel=1e-5)
    assert float(hard(model, features, targets, True)["mask"]) == pytest.approx(-np.log(0.7), rel=1e-5)
    with pytest.raises(ValueError, match="soft_targets needs criterion 'ce'"):
        make_objective("segmentation", criterion="lovasz", soft_targets=True)


def test_wise_ft_blends_the_warm_start_and_keeps_the_best_blend(recipe_path):
    import json

    from portrait_sdk.export import load_model

    recipe_path.write_text(recipe_path.read_text().replace("seed = 1", "seed = 1\nwise_ft = [0.0, 0.5]"))
    trainer = _trainer(recipe_path)
    best = trainer.fit()
    report = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert [blend["alpha"] for blend in report["wise_ft"]] == [0.0, 0.5]
    assert best["wise_ft"] in (0.0, 0.5, 1.0) and report["best"]["wise_ft"] == best["wise_ft"]
    chosen = [b for b in report["wise_ft"] if b["alpha"] == best["wise_ft"]]
    # a = 0 is the untrained start: the trained model (or a blend) must beat it on the toy discs
    assert report["wise_ft"][0]["val_iou"] < best["val_iou"]
    if chosen:
        assert chosen[0]["val_iou"] == best["val_iou"]
    saved = load_model(trainer.run_dir / "best.keras")
    np.testing.assert_allclose(trainer.evaluate(saved)["iou"], best["val_iou"], rtol=1e-6)
