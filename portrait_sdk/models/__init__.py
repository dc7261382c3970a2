"""The model zoo: one module per architecture, shared blocks in ``blocks``, a registry in ``registry``.

    >>> from portrait_sdk.models import build_model, list_models
    >>> model = build_model("portraitnet", input_size=(224, 224))
"""

from portrait_sdk.models.registry import ModelSpec, Reference, build_model, get_spec, list_models, register

# Importing an architecture module registers it; the order here is the order of ``list_models()``.
from portrait_sdk.models import portraitnet  # noqa: E402,F401
from portrait_sdk.models import mmnet  # noqa: E402,F401
from portrait_sdk.models import extremec3net  # noqa: E402,F401
from portrait_sdk.models import sinet  # noqa: E402,F401
from portrait_sdk.models import hair_segmenter  # noqa: E402,F401
from portrait_sdk.models import nail_segmenter  # noqa: E402,F401
from portrait_sdk.models import selfie  # noqa: E402,F401

__all__ = ["ModelSpec", "Reference", "build_model", "get_spec", "list_models", "register"]
