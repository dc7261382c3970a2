"""Datasets: the segmentation / matting data the SDK trains on, one in-memory interface for all of them.

``open_dataset`` (``formats``) reads a folder in any supported layout into a :class:`SegmentationDataset`
(``dataset``) of :class:`Sample` records, paths plus how to decode the label (``labels``); nothing is decoded
until :meth:`SegmentationDataset.load`. Pairing problems (an image without a label, a label without an image, an
empty folder) are found by the readers; content problems (unreadable or truncated files, size mismatches, masks
that are not binary) by :func:`validate`, which decodes every sample and is meant to run once before training.
Both raise :class:`DatasetError` naming every bad file, or with ``skip_bad=True`` drop the bad samples with a
warning. numpy + OpenCV only; no TensorFlow import.
"""

from portrait_sdk.data.dataset import SegmentationDataset, ValidationReport, validate
from portrait_sdk.data.formats import (
    FORMATS,
    from_celeba_hair,
    from_eg1800,
    from_figaro,
    from_folder,
    from_matting_human,
    from_supervisely,
    open_dataset,
)
from portrait_sdk.data.labels import (
    DECODERS,
    MASK_TOLERANCE,
    DatasetError,
    Sample,
    decode_label,
    jpeg_is_complete,
    read_image,
)

__all__ = [
    "DECODERS", "FORMATS", "MASK_TOLERANCE", "DatasetError", "Sample", "SegmentationDataset", "ValidationReport",
    "decode_label", "from_celeba_hair", "from_eg1800", "from_figaro", "from_folder", "from_matting_human",
    "from_supervisely", "jpeg_is_complete", "open_dataset", "read_image", "validate",
]
