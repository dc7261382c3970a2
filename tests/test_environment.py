"""The environment the SDK depends on: working QAT, and an inference side free of TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from conftest import REQUIRE_SYSTEM_ENV, require_system

from portrait_sdk.cli import TRAIN_MODULES

REPO = Path(__file__).resolve().parents[1]


def test_keras_is_keras_2_for_qat():
    from portrait_sdk.keras_env import keras, tf

    assert keras.__version__.startswith("2."), keras.__version__
    assert tf.keras.__name__.startswith("tf_keras"), "TF_USE_LEGACY_KERAS=1 must be set before importing tensorflow"


def test_qat_quantize_model_works():
    """tfmot 0.7.3 (what plain pip picks) fails here with 'Unknown activation function: NoOpActivation'."""
    import tensorflow_model_optimization as tfmot

    from portrait_sdk.keras_env import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(x))
    qat = tfmot.quantization.keras.quantize_model(model)
    out = qat(np.zeros((1, 16, 16, 3), np.float32))
    assert out.shape == (1, 16, 16, 2)
    assert any("quant" in layer.name for layer in qat.layers)


def blocking(modules: tuple[str, ...]) -> str:
    """Code that makes ``modules`` (top-level names) unimportable, as where they are not installed."""
    return textwrap.dedent(f"""
        import importlib.abc, sys

        class _Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {modules!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
                return None

        sys.meta_path.insert(0, _Blocked())
    """)


BLOCK_TENSORFLOW = blocking(("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"))
# The light install (plain `uv run`): none of the train extra (pyproject.toml), nor the test tools.
BLOCK_TRAIN_EXTRA = blocking((*TRAIN_MODULES, "keras", "PIL", "pytest"))
TRAIN_PACKAGES = {"tensorflow", "tf-keras", "tensorflow-model-optimization", "mediapipe", "tensorboard", "matplotlib"}


def _locked_packages(*uv_options: str) -> set[str]:
    """The package names uv installs from uv.lock for ``uv run [uv_options]``."""
    require_system("uv")
    result = subprocess.run(["uv", "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
                             "--no-emit-project", *uv_options], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return {re.split(r"[=<>; ]", line.strip())[0].lower() for line in result.stdout.splitlines()
            if line.strip() and not line.startswith(("#", " ", "-"))}


def test_plain_uv_run_installs_no_training_stack_and_the_test_command_does():
    """The README's main job (`uv run portrait-sdk preview --webcam`) gets the light inference side,
    its test command (`uv run --group dev pytest`) what the tests need."""
    light, tests = _locked_packages(), _locked_packages("--group", "dev")
    assert {"ai-edge-litert", "numpy", "opencv-contrib-python", "fastapi", "uvicorn"} <= light
    assert not light & (TRAIN_PACKAGES | {"pytest"}), sorted(light & TRAIN_PACKAGES)
    assert TRAIN_PACKAGES | {"pytest"} <= tests


def test_readme_test_command_is_what_ci_runs():
    command = re.search(r"^(uv run [^#\n]*pytest)\s+#", (REPO / "README.md").read_text(), re.M).group(1).strip()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command == "uv run --group dev pytest" and command in ci
    assert f"export {REQUIRE_SYSTEM_ENV}=1" in ci[:ci.index(command)]


def test_light_install_runs_the_inference_side_and_names_the_train_extra():
    """Without the train extra: the inference side imports, `portrait-sdk models` prints the zoo, and a training
    command says how to get the training side instead of a traceback."""
    code = BLOCK_TRAIN_EXTRA + textwrap.dedent("""
        import portrait_sdk.runtime, portrait_sdk.preview.app, portrait_sdk.serve.__main__, portrait_sdk.evaluate
        import portrait_sdk.bench, portrait_sdk.gpu_check, portrait_sdk.predict
        from portrait_sdk.cli import main
        assert main(["models", "--task", "hair"]) == 0
        assert main(["train", "training/portraitnet.toml"]) == 2
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "hair_segmenter" in result.stdout
    assert "uv run --extra train portrait-sdk train" in result.stderr


def test_inference_side_imports_and_predicts_without_tensorflow(tmp_path):
    """The inference modules import, and ``portrait-sdk predict`` runs the packaged model, with TensorFlow blocked."""
    import cv2

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((40, 30, 3), 128, np.uint8))
    code = BLOCK_TENSORFLOW + textwrap.dedent(f"""
        import portrait_sdk, portrait_sdk.runtime, portrait_sdk.gpu_ops, portrait_sdk.model_card, portrait_sdk.metadata
        import portrait_sdk.runtime.segmenter, portrait_sdk.runtime.refine, portrait_sdk.runtime.temporal
        import portrait_sdk.effects, portrait_sdk.assets, portrait_sdk.preview.app, portrait_sdk.bench, portrait_sdk.evaluate
        import portrait_sdk.serve, portrait_sdk.serve.__main__, portrait_sdk.gpu_check, portrait_sdk.files
        import portrait_sdk.predict, portrait_sdk.precisions
        from portrait_sdk.cli import main
        assert main(["predict", {str(photo)!r}, "--output", {str(tmp_path / "out")!r}]) == 0
        assert not any(m.split(".")[0] in ("tensorflow", "tf_keras") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    assert (tmp_path / "out" / "photo.png").is_file()
