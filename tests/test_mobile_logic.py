"""The mobile apps' maths equals the Python runtime's: shared test vectors in ``tests/vectors/mobile_logic.json``.

Every case is computed here from the runtime's and the effects' own functions (letterbox placement, mapping the
mask back to the frame, temporal smoothing, compositing, matte, hair colour, nail polish without gloss, the built-in
background, the effect table); the Kotlin unit tests (``android_demo/app/src/test``) read the same file and compare
the app's code with it.
``uv run python tests/test_mobile_logic.py`` rewrites the file after a deliberate change of the runtime's maths.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from portrait_sdk import effects
from portrait_sdk.runtime import ema_blend, uncertainty_blend
from portrait_sdk.preprocess import GREY, fit_box
from portrait_sdk.runtime.segmenter import Segmenter

VECTORS = Path(__file__).parent / "vectors" / "mobile_logic.json"
LETTERBOX_CASES = [((480, 640), (224, 224)), ((640, 480), (224, 224)), ((720, 1280), (256, 256)),
                   ((1080, 1920), (256, 144)), ((101, 333), (224, 224)), ((4, 5), (2, 3)), ((4, 1), (2, 2)),
                   ((256, 256), (256, 256)), ((7, 5), (3, 9))]
# (frame height, width), (model height, width), resize mode
POSTPROCESS_CASES = [((5, 7), (8, 8), "letterbox"), ((12, 10), (8, 8), "letterbox"), ((9, 4), (6, 6), "stretch")]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, np.float32).ravel()]


def _ints(a: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]


def _postprocess(prob: np.ndarray, frame_hw: tuple[int, int], model_hw: tuple[int, int], resize: str) -> np.ndarray:
    """``Segmenter.postprocess`` itself, on a stand-in holding only what it reads (box placement, no refinement)."""
    stand_in = SimpleNamespace(_box=lambda hw: fit_box(hw, model_hw, resize), refine=None)
    return Segmenter.postprocess(stand_in, prob, np.zeros((*frame_hw, 3), np.uint8))


def build_vectors() -> dict:
    """All cases with their inputs and the runtime's outputs (float32 values, uint8 pixels as flat RGB lists)."""
    letterbox = [{"frame_hw": list(f), "model_hw": list(m), "box": list(fit_box(f, m, "letterbox"))}
                 for f, m in LETTERBOX_CASES]
    postprocess = []
    for i, (frame_hw, model_hw, resize) in enumerate(POSTPROCESS_CASES):
        prob = _rng(10 + i).random(model_hw, dtype=np.float32)
        postprocess.append({"frame_hw": list(frame_hw), "model_hw": list(model_hw), "resize": resize,
                            "prob": _floats(prob), "mask": _floats(_postprocess(prob, frame_hw, model_hw, resize))})
    p = _rng(1).random(24, dtype=np.float32)
    p[:4] = [0.0, 1.0, 0.5, 0.999]
    prev = _rng(2).random(24, dtype=np.float32)
    smoothing = {"p": _floats(p), "prev": _floats(prev),
                 "uncertainty": {"ratio": 0.9, "out": _floats(uncertainty_blend(p, prev, 0.9))},
                 "ema": {"alpha": 0.5, "out": _floats(ema_blend(p, prev, 0.5))}}
    height, width = 4, 6
    frame = _rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    background = _rng(4).integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = _rng(5).random((height, width), dtype=np.float32)
    alpha[0, :3] = [0.0, 1.0, 0.5]
    hair_color, nail_color = (150, 40, 60), (200, 20, 60)
    return {
        "letterbox_grey": GREY,
        "letterbox": letterbox,
        "postprocess": postprocess,
        "smoothing": smoothing,
        "pixels": {
            "height": height, "width": width, "frame": _ints(frame), "background": _ints(background),
            "alpha": _floats(alpha),
            "composite": _ints(effects.composite(frame, background, alpha)),
            "matte": _ints(effects.matte_view(frame, alpha)),
            "hair_color": {"color": list(hair_color), "strength": 0.8,
                           "out": _ints(effects.recolor_hair(frame, alpha, hair_color, 0.8))},
            "nails": {"color": list(nail_color), "gloss": 0.0,
                      "out": _ints(effects.paint_nails(frame, alpha, nail_color, gloss=0.0))},
            "gradient": _ints(effects.gradient_background((height, width))),
        },
        "effects": {name: list(effect.tasks) for name, effect in effects.EFFECTS.items()},
    }


def _close(expected, actual, tolerance: float) -> None:
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), atol=tolerance,
                               rtol=0)


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(VECTORS.read_text())


def test_letterbox_boxes_are_the_runtimes(stored):
    assert stored["letterbox"] == build_vectors()["letterbox"]
    assert stored["letterbox_grey"] == GREY


def test_postprocess_masks_are_the_runtimes(stored):
    for case, fresh in zip(stored["postprocess"], build_vectors()["postprocess"], strict=True):
        assert case["frame_hw"] == fresh["frame_hw"] and case["resize"] == fresh["resize"]
        _close(fresh["mask"], case["mask"], 1e-6)


def test_smoothing_outputs_are_the_runtimes(stored):
    fresh = build_vectors()["smoothing"]
    for key in ("uncertainty", "ema"):
        _close(fresh[key]["out"], stored["smoothing"][key]["out"], 1e-6)


def test_pixel_effects_are_the_runtimes(stored):
    fresh, old = build_vectors()["pixels"], stored["pixels"]
    assert old["composite"] == fresh["composite"] and old["matte"] == fresh["matte"]
    assert old["hair_color"] == fresh["hair_color"] and old["nails"] == fresh["nails"]
    assert old["gradient"] == fresh["gradient"]


def test_effect_table_is_the_runtimes(stored):
    assert stored["effects"] == build_vectors()["effects"]


def test_vectors_exercise_the_edges(stored):
    """The cases keep their point: a half-pixel rounding in the letterbox, and both blends changing the mask."""
    boxes = {tuple(c["frame_hw"]): c["box"] for c in stored["letterbox"]}
    assert boxes[(4, 5)] == [0, 0, 2, 2]  # round(2.5) is 2 (half to even), not 3
    smoothing = stored["smoothing"]
    assert not np.allclose(smoothing["uncertainty"]["out"], smoothing["p"])
    assert stored["pixels"]["composite"] != stored["pixels"]["frame"]


if __name__ == "__main__":
    VECTORS.parent.mkdir(exist_ok=True)
    VECTORS.write_text(json.dumps(build_vectors(), indent=1) + "\n")
    print(f"wrote {VECTORS}")
