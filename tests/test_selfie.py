"""MediaPipe's selfie segmenter as a zoo architecture: its Keras graph with the published weights imported gives
the published file's output, exports GPU-safe with our card, and fine-tunes with our losses and QAT."""

from __future__ import annotations

import numpy as np
import pytest

from portrait_sdk.models import build_model, get_spec
from portrait_sdk.tflite_weights import load_pretrained

FILES = {"selfie_segmentation.tflite": (256, 256), "selfie_segmentation_landscape.tflite": (144, 256)}


def _photos(shared_dir, size):
    import cv2

    for path in sorted((shared_dir / "datasets" / "samples").glob("*.*")):
        image = cv2.imread(str(path))
        if image is not None:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            yield path.name, cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255


@pytest.fixture(scope="module", params=sorted(FILES))
def imported(request, shared_dir):
    path = shared_dir / "baselines" / request.param
    model = build_model("selfie", input_size=FILES[request.param])
    load_pretrained(model, path)
    return path, model


def test_imported_graph_reproduces_mediapipe_on_the_sample_photos(imported, shared_dir):
    from ai_edge_litert.interpreter import Interpreter

    path, model = imported
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    photos = list(_photos(shared_dir, model.input_shape[1:3]))
    assert len(photos) >= 4
    people = 0
    for name, x in photos:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        theirs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        ours = 1.0 / (1.0 + np.exp(-np.clip(model(x).numpy(), -60, 60)))
        assert np.abs(ours - theirs).max() <= 1e-2, name  # measured: 4e-5 at most
        people += 0.05 < theirs.mean() < 0.95
    assert people >= 2, "photos with a person in part of the frame are what this compares"


def test_export_is_gpu_safe_with_our_card_and_matches_the_keras_graph(imported, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from portrait_sdk.export import export_model
    from portrait_sdk.gpu_ops import gpu_incompatibilities, tflite_op_names
    from portrait_sdk.model_card import ModelCard, card_path

    path, model = imported
    out = export_model(model, tmp_path, "selfie_test", "float16", architecture="selfie", latency_runs=2)
    ops = tflite_op_names(out)
    assert gpu_incompatibilities(out) == []
    assert "TRANSPOSE_CONV" in ops and "HARD_SWISH" in ops and "Convolution2DTransposeBias" not in ops
    card = ModelCard.load(card_path(out))
    assert (card.architecture, card.task, card.input.resize) == ("selfie", "portrait", "stretch")
    assert (card.output.kind, card.output.labels) == ("sigmoid", ("person",))
    assert (card.input.height, card.input.width) == model.input_shape[1:3]
    x = np.random.default_rng(0).uniform(0, 1, (1, *model.input_shape[1:])).astype(np.float32)
    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, 1.0 / (1.0 + np.exp(-model(x).numpy())), atol=5e-3)  # float16 weights


def test_spec_states_the_mediapipe_contract():
    spec = get_spec("selfie")
    assert spec.resize_mode == "stretch"
    model = build_model("selfie")
    names = spec.pretrained_layers(model)
    assert len(names) == len(set(names)) == 55  # the published file's weighted ops
    assert all(model.get_layer(n).weights for n in names)
    assert {w.name.split("/")[0] for w in model.weights} == set(names)  # every weighted layer is imported
