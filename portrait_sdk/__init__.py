"""portrait-sdk: real-time portrait, matting, hair and nail segmentation for phones."""

__version__ = "0.1.0"
