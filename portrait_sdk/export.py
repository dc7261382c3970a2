"""Conversion of Keras models to TFLite flatbuffers for the mobile GPU delegate."""

from __future__ import annotations

from portrait_sdk.keras_env import keras, tf


def inference_signature(model) -> "keras.Model":
    """Rebuild ``model`` with a static batch of 1, as the mobile runtimes want."""
    inputs = keras.Input(shape=model.input_shape[1:], batch_size=1, name=model.input_names[0])
    return keras.Model(inputs, model(inputs), name=model.name)


def to_tflite(model) -> bytes:
    """Convert a Keras model to a float32 TFLite flatbuffer with builtin ops only (batch 1, static shapes)."""
    fixed = inference_signature(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()
