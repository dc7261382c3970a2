"""The zoo's hair segmenter is MediaPipe's hair graph: its weights import from ``hair_segmentation.tflite`` and the
Keras model, and our builtin-only export of it, reproduce that file's output.

Most tests need the shared folder (``../shared/baselines/hair_segmentation.tflite`` and the sample photos) and skip
with a message when it is absent; the unpooling test needs nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from portrait_sdk.models import build_model
from portrait_sdk.models.hair_segmenter import TIE_ORDER, MaxUnpool2x
from portrait_sdk.tflite_weights import load_pretrained
from portrait_sdk.tflite_weights import WeightImportError

SAMPLES = ("astronaut.png", "basketball1.png", "grace_hopper.jpg", "messi5.jpg")
# Measured on SAMPLES, first pass (empty prior) and second pass (the file's own mask as prior): max abs difference
# of the hair probability 1.0e-3, thresholded masks identical (IoU 1.0). Float32 rounding in near-tied 2x2
# windows of the previous-mask features is what remains.
PROB_TOLERANCE = 5e-3


def _unpool_reference(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """MaxUnpooling2D as MediaPipe's indices place it: each y at its window's first maximum in TIE_ORDER."""
    out = np.zeros_like(x)
    for b, i, j, c in np.ndindex(*y.shape):
        window = [x[b, 2 * i + di, 2 * j + dj, c] for di, dj in TIE_ORDER]
        di, dj = TIE_ORDER[int(np.argmax(window))]  # argmax: the first of tied maxima
        out[b, 2 * i + di, 2 * j + dj, c] = y[b, i, j, c]
    return out


def test_unpooling_places_values_at_the_maxima_and_breaks_ties_as_the_file():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 12, 3)).astype(np.float32)
    x[:, :4, :4] = 0.5  # flat region: four-way ties
    x[:, 4:6, 4:6, 0] = np.float32(1.0)  # and a 3-way tie with a smaller first value
    x[:, 4, 4, 0] = np.float32(0.9)
    x[:, 6, 6, 1] = x[:, 6, 7, 1] + np.float32(1e-5)  # a near-tie is no tie
    y = rng.normal(size=(2, 4, 6, 3)).astype(np.float32)
    got = MaxUnpool2x()([y, x]).numpy()
    np.testing.assert_allclose(got, _unpool_reference(y, x), atol=1e-6)


def _photo(shared_dir, name: str) -> np.ndarray:
    from PIL import Image

    image = Image.open(shared_dir / "datasets" / "samples" / name).convert("RGB").resize((512, 512), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


def _hair_probability(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True))[..., 1]


def _run(interpreter, x: np.ndarray) -> np.ndarray:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def hair_file(shared_dir):
    path = shared_dir / "baselines" / "hair_segmentation.tflite"
    if not path.is_file():
        pytest.skip(f"needs MediaPipe's hair model at {path}")
    return path


@pytest.fixture(scope="module")
def imported(hair_file):
    model = build_model("hair_segmenter")
    load_pretrained(model, hair_file)
    return model


def test_imported_model_reproduces_the_file_on_the_sample_photos(shared_dir, hair_file, imported):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(hair_file))
    interpreter.allocate_tensors()
    diffs, ious = [], []
    for name in SAMPLES:
        rgb, prior = _photo(shared_dir, name), np.zeros((512, 512, 1), np.float32)
        for _ in range(2):  # first frame, then a second one with the file's mask as the prior
            x = np.concatenate([rgb, prior], -1)[None]
            want = _hair_probability(_run(interpreter, x))
            got = _hair_probability(np.asarray(imported(x, training=False)))
            diffs.append(float(np.abs(got - want).max()))
            a, b = want > 0.5, got > 0.5
            ious.append(float((a & b).sum() / max((a | b).sum(), 1)))
            prior = want[0, ..., None]
    print(f"hair import: max |p - p_file| {max(diffs):.2e}, mean mask IoU {np.mean(ious):.5f}")
    assert max(diffs) <= PROB_TOLERANCE, diffs
    assert min(ious) >= 0.999, ious


def test_builtin_export_of_the_imported_model_matches_the_file_and_runs_on_the_gpu_delegate(shared_dir, hair_file,
                                                                                            imported):
    from ai_edge_litert.interpreter import Interpreter

    from portrait_sdk.export import inference_graph, to_tflite
    from portrait_sdk.gpu_ops import gpu_incompatibilities, tflite_op_names

    flatbuffer = to_tflite(inference_graph(imported))
    assert gpu_incompatibilities(flatbuffer) == []
    assert not {"MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Convolution2DTransposeBias"} & set(
        tflite_op_names(flatbuffer))
    x = np.concatenate([_photo(shared_dir, "astronaut.png"), np.zeros((512, 512, 1), np.float32)], -1)[None]
    file = Interpreter(model_path=str(hair_file))
    file.allocate_tensors()
    ours = Interpreter(model_content=flatbuffer)
    ours.allocate_tensors()
    got = _run(ours, x)
    got = got[..., 1] if got.shape[-1] == 2 else got
    assert np.abs(got - _hair_probability(_run(file, x))).max() <= PROB_TOLERANCE


def test_a_file_of_another_graph_fails_naming_the_layer(shared_dir):
    selfie = shared_dir / "baselines" / "selfie_segmentation.tflite"
    if not selfie.is_file():
        pytest.skip(f"needs MediaPipe's selfie model at {selfie}")
    with pytest.raises(WeightImportError, match=r"weighted layers \(first unmatched: 'enc1_b2_pw_prelu'\)"):
        load_pretrained(build_model("hair_segmenter"), selfie)


def test_an_rgb_only_model_fails_naming_the_stem_and_both_shapes(hair_file):
    """The file's stem takes RGB + the previous mask: a 3-channel model cannot take its weights."""
    with pytest.raises(WeightImportError, match=r"'stem0'.*\(2, 2, 4, 8\).*\(2, 2, 3, 8\)"):
        load_pretrained(build_model("hair_segmenter", input_channels=3), hair_file)
