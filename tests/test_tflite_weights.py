"""Weight import from .tflite files (portrait_sdk.tflite_weights).

The core tests convert small Keras models here (float32, float16, int8 with per-channel weights, batch norm folded
by the converter) and import them back; the tests on published files need ../shared (skipped with a message).
"""

from __future__ import annotations

import numpy as np
import pytest

from portrait_sdk.export import to_tflite
from portrait_sdk.keras_env import keras
from portrait_sdk.tflite_weights import WeightImportError, assign, read_layers, reestimate_batch_norm

layers = keras.layers
MOBILENET = "pretrained/tf2_mobilenet_v2_1.0_224_ptq.tflite"


def _tiny(seed: int = 0, bn: bool = False, width: int = 8):
    """conv (+BN) + PReLU, depthwise, stride-2 conv, transposed conv, 1x1 conv: every op read_layers handles."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(width, 3, padding="same", use_bias=not bn, name="c1")(inputs)
    if bn:
        x = layers.BatchNormalization(name="c1_bn")(x)
    x = layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(0.1, 0.3),
                     name="p1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = layers.Conv2DTranspose(4, 2, strides=2, padding="same", name="up")(x)
    outputs = layers.Conv2D(2, 1, name="head")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)  # non-zero biases everywhere (the converter drops all-zero ones)
    model.set_weights([w if w.ndim > 1 and "alpha" not in v.name else rng.normal(0, 0.1, w.shape)
                       for v, w in zip(model.weights, model.get_weights())])
    if bn:  # non-trivial statistics, so folding them matters
        model.get_layer("c1_bn").set_weights([np.random.uniform(0.5, 2, width), np.random.randn(width),
                                              np.random.randn(width), np.random.uniform(0.5, 2, width)])
    return model


NAMES = ["c1", "p1", "dw", "c2", "up", "head"]


def _images(n: int = 4, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 16, 16, 3)).astype(np.float32)


def _calibration():
    for image in _images(8, seed=2):
        yield [image[None]]


@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-5), ("float16", 2e-2), ("int8", None)])
def test_import_reproduces_the_source_model(tmp_path, precision, tolerance):
    source = _tiny()
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(source, precision, _calibration if precision == "int8" else None))
    file_layers = read_layers(path)
    assert [layer.op for layer in file_layers] == ["CONV_2D", "PRELU", "DEPTHWISE_CONV_2D", "CONV_2D",
                                                   "TRANSPOSE_CONV", "CONV_2D"]
    target = _tiny(seed=7)
    assign(target, file_layers, NAMES)
    x = _images()
    expected, got = source(x).numpy(), target(x).numpy()
    if precision == "int8":  # dequantized per-channel weights: close, not equal
        assert np.corrcoef(expected.ravel(), got.ravel())[0, 1] > 0.999
        for ours, theirs in zip(target.get_layer("c2").get_weights(), source.get_layer("c2").get_weights()):
            step = np.abs(theirs).max() / 127
            assert np.abs(ours - theirs).max() <= step
    else:
        np.testing.assert_allclose(got, expected, atol=tolerance)


def test_folded_batch_norm_becomes_identity_and_reestimates(tmp_path):
    source = _tiny(bn=True)
    path = tmp_path / "bn.tflite"
    path.write_bytes(to_tflite(source))
    target = _tiny(seed=3, bn=True)
    folded = assign(target, read_layers(path), NAMES)
    assert [bn.name for bn in folded] == ["c1_bn"]
    x = _images()
    np.testing.assert_allclose(target(x).numpy(), source(x).numpy(), atol=1e-4)
    # Identity BN in training mode normalises the imported features away; re-estimated, it keeps them.
    before = np.abs(target(x, training=True).numpy() - source(x).numpy()).mean()
    reestimate_batch_norm(target, folded, [x])
    np.testing.assert_allclose(target(x).numpy(), source(x).numpy(), atol=1e-4)
    after = np.abs(target(x, training=True).numpy() - source(x).numpy()).mean()
    assert after < 0.05 * before


def test_mismatch_names_the_first_layer_and_both_shapes(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(_tiny()))
    wider = _tiny(width=6)
    weights = [w.copy() for w in wider.get_weights()]
    with pytest.raises(WeightImportError, match=r"layer 'c1'.*file shapes \[\(3, 3, 3, 8\), \(8,\)\], model "
                                                r"shapes \[\(3, 3, 3, 6\), \(6,\)\]"):
        assign(wider, read_layers(path), NAMES)
    assert all(np.array_equal(a, b) for a, b in zip(weights, wider.get_weights())), "nothing may be written"
    with pytest.raises(WeightImportError, match="no layer 'nope'"):
        assign(_tiny(), read_layers(path), ["nope"])
    with pytest.raises(WeightImportError, match="only 6 weighted layers"):
        assign(_tiny(), read_layers(path), NAMES + ["head"])


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        read_layers(tmp_path / "missing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(WeightImportError, match="junk.tflite"):
        read_layers(junk)


def _keras_mobilenet_v2():
    model = keras.applications.MobileNetV2(weights=None, classes=1001, classifier_activation=None)
    return model, [layer.name for layer in model.layers
                   if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]


def _grace_hopper(shared_dir, size=224):
    import cv2

    image = cv2.imread(str(shared_dir / "datasets" / "samples" / "grace_hopper.jpg"))
    image = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_LINEAR)
    return image.astype(np.float32)[None] / 255.0  # the file's x / 127.5 - 1 is folded into its first conv


def test_imported_imagenet_mobilenet_v2_classifies_grace_hopper(shared_dir):
    from ai_edge_litert.interpreter import Interpreter

    path = shared_dir / MOBILENET
    model, names = _keras_mobilenet_v2()
    file_layers = read_layers(path)
    folded = assign(model, file_layers, names)
    assert len(folded) == 52  # every conv but the classifier had its batch norm folded
    x = _grace_hopper(shared_dir)
    labels = (shared_dir / "pretrained" / "imagenet_labels.txt").read_text().splitlines()
    assert labels[int(np.argmax(model(x).numpy()[0]))] == "military uniform"

    # The Keras activations match the int8 file's own intermediate tensors within its quantization noise.
    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.round(x * 255).astype(np.uint8))
    interpreter.invoke()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for i in (2, 20, 40, 51):  # early, middle, late, the last conv
        tensor = tensors[file_layers[i].output_tensor]
        t_scale, t_zero = tensor["quantization"]
        theirs = (interpreter.get_tensor(tensor["index"]).astype(np.float32) - t_zero) * t_scale
        bn = model.get_layer(names[i])._outbound_nodes[0].outbound_layer
        after = bn._outbound_nodes[0].outbound_layer if len(bn._outbound_nodes) == 1 else bn
        tap = after if type(after).__name__ == "ReLU" else bn
        ours = keras.Model(model.input, tap.output)(x).numpy()
        # measured: 0.4-2.7 steps; the input range folded into the first conv pads with black, not grey, at borders
        assert np.abs(ours - theirs).mean() < 3 * t_scale, names[i]
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.98, names[i]  # a wrong import: ~0


def test_a_file_of_another_architecture_fails_naming_the_layer(shared_dir):
    model, names = _keras_mobilenet_v2()
    with pytest.raises(WeightImportError, match=r"selfie_segmentation.tflite: layer 'conv2d' \(CONV_2D\) does not "
                                                r"fit Keras layer 'Conv1': file shapes \[\(3, 3, 3, 16\), \(16,\)\]"):
        from portrait_sdk.tflite_weights import load_into

        load_into(model, shared_dir / "baselines" / "selfie_segmentation.tflite", names)


@pytest.mark.parametrize("name, options", [("portraitnet", {}), ("nail_segmenter", {"width": 1.0})])
def test_mobilenet_v2_zoo_models_take_the_imagenet_file(shared_dir, name, options):
    """PortraitNet's encoder and both of the nail segmenter's branches, by their specs' mappings."""
    from portrait_sdk.models import build_model
    from portrait_sdk.tflite_weights import load_pretrained

    model = build_model(name, **options)
    path = shared_dir / MOBILENET
    folded = load_pretrained(model, path)
    assert len(folded) == {"portraitnet": 51, "nail_segmenter": 51 + 18}[name]  # every encoder conv had its BN
    stem = model.get_layer("enc_stem" if name == "portraitnet" else "high_stem").get_weights()[0]
    assert np.allclose(stem, read_layers(path)[0].weights[0])  # the file's first conv, input range folded in
