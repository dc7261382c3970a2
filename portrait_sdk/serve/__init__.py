"""The HTTP service and browser demo: ``portrait-sdk serve --models DIR`` (FastAPI + uvicorn).

No TensorFlow: it runs the exported ``.tflite`` files through the same ``Segmenter`` and ``EFFECTS`` as the preview.
"""

from portrait_sdk.serve.app import ServeConfig, create_app
from portrait_sdk.serve.uploads import UploadLimits

__all__ = ["ServeConfig", "UploadLimits", "create_app"]
