"""The one place the training side imports TensorFlow and Keras.

tensorflow-model-optimization's QAT only works with Keras 2 (``tf_keras``), so ``TF_USE_LEGACY_KERAS`` must be
set before TensorFlow is first imported. Every training-side module imports ``tf`` and ``keras`` from here.
The inference side (``runtime``, ``preview``, ``serve``) never imports this module.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
