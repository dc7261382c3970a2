"""The environment the SDK depends on: working QAT, and an inference side free of TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np


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


BLOCK_TENSORFLOW = textwrap.dedent("""
    import importlib.abc, sys

    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"):
                raise ImportError(f"{name} is blocked: the inference side must not import TensorFlow")
            return None

    sys.meta_path.insert(0, _NoTensorFlow())
""")


def test_inference_side_imports_without_tensorflow():
    code = BLOCK_TENSORFLOW + textwrap.dedent("""
        import portrait_sdk, portrait_sdk.runtime, portrait_sdk.gpu_ops, portrait_sdk.model_card, portrait_sdk.metadata
        import portrait_sdk.runtime.segmenter, portrait_sdk.runtime.refine, portrait_sdk.runtime.temporal
        import portrait_sdk.effects, portrait_sdk.assets, portrait_sdk.preview.app, portrait_sdk.bench, portrait_sdk.evaluate
        import portrait_sdk.serve, portrait_sdk.serve.__main__, portrait_sdk.gpu_check
        assert not any(m.split(".")[0] in ("tensorflow", "tf_keras") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
