"""Dataset readers and pre-training validation (numpy + OpenCV only; no TensorFlow import)."""

from portrait_sdk.data.readers import (
    DECODERS,
    FORMATS,
    MASK_TOLERANCE,
    DatasetError,
    Sample,
    SegmentationDataset,
    ValidationReport,
    decode_label,
    from_celeba_hair,
    from_eg1800,
    from_figaro,
    from_folder,
    from_matting_human,
    from_supervisely,
    jpeg_is_complete,
    open_dataset,
    read_image,
    validate,
)

__all__ = [
    "DECODERS", "FORMATS", "MASK_TOLERANCE", "DatasetError", "Sample", "SegmentationDataset", "ValidationReport",
    "decode_label", "from_celeba_hair", "from_eg1800", "from_figaro", "from_folder", "from_matting_human",
    "from_supervisely", "jpeg_is_complete", "open_dataset", "read_image", "validate",
]
