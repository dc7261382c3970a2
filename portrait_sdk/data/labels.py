"""Labels: decoding a sample's image and label file into arrays, and the ``DatasetError`` a bad file raises.

A :class:`Sample` names an image, its label file and the entry of :data:`DECODERS` that reads the label; decoding
finds the content problems (unreadable, empty or truncated files, size mismatches, masks that are not binary) and
names the file. numpy + OpenCV only.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

MAX_LISTED = 20
"""Problems spelled out in one error message; the rest are counted ("... and N more") and kept in ``.problems``."""
MASK_TOLERANCE = 0.05
"""Largest fraction of a binary mask's pixels allowed strictly between the levels (33..222 on the 0/255 scale).

Binary masks in the wild are not exactly {0, 255}: anti-aliased or area-resampled outlines and JPEG ringing leave
in-between values along the outline. Measured on the shared data: JPEG (quality 92) copies of the hair / nail masks
have 0 % of pixels in 33..222 (ringing stays within 32 of a level), a 0.5x area resize up to 4.3 % (thin hair
strands), a 5x5 blur up to 7 %. 5 % accepts resampled and JPEG-compressed masks but rejects colour-coded,
palette or class-index maps, which land mostly between the levels. A soft matte usually passes (teacher alphas have
a median of 3 %): it is thresholded at 128 like any mask; give it an ``alpha/`` folder to keep it soft.
"""
SUPERVISELY_FOREGROUND = frozenset({"person_poly", "person_bmp", "neutral"})
"""Supervisely Persons classes; PortraitNet fills ``neutral`` as person too (MODELS.md section 8)."""


class DatasetError(ValueError):
    """A dataset problem. ``problems`` holds one ``'<file>: <what is wrong>'`` line per bad file."""

    def __init__(self, summary: str, problems: Sequence[str] = ()):
        self.problems = tuple(problems)
        lines = [summary, *self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"... and {len(self.problems) - MAX_LISTED} more")
        super().__init__("\n  ".join(lines))


@dataclass(frozen=True)
class Sample:
    """One image and where its label comes from.

    ``label_kind`` is ``"mask"`` (binary) or ``"alpha"`` (soft matte); ``decoder`` names the entry of
    :data:`DECODERS` that turns ``label`` into a float32 array; ``meta`` holds ``(key, value)`` string pairs
    (an ``index.csv`` row, the source split, ...), a tuple so samples stay hashable.
    """

    image: Path
    label: Path
    label_kind: str
    decoder: str
    meta: tuple = ()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_ALPHA_COLOR_TYPES = (4, 6)  # IHDR colour types with an alpha channel: grey + alpha, RGBA
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""A marker after entropy-coded data: FF followed by anything but a stuffed 00, a restart marker or a fill FF."""


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG's marker chain runs from SOI to EOI (ITU-T T.81, annex B).

    ``cv2.imread`` decodes a truncated JPEG without an error (libjpeg pads the missing part grey and only prints
    "Premature end of JPEG file"); ``cv2.imdecode`` (used here) returns None in OpenCV 5.1 but says nothing of why.
    This check names the problem and does not depend on OpenCV's source manager: segments are skipped by their
    length (an EXIF thumbnail's own EOI inside APP1 does not count) and each scan's entropy-coded data by searching
    for the next marker. Bytes after EOI (phone trailers) are allowed. About 0.05 ms for a 40 KB file.
    """
    if data[:2] != b"\xff\xd8":
        return False
    pos, size = 2, len(data)
    while pos + 1 < size:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > size:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None:
                return False
            pos = found.start()
    return False


def _decode_file(path: Path, flags: int) -> np.ndarray:
    """``cv2.imdecode`` of a file, raising DatasetError for a missing, empty, unreadable or truncated one."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from error
    if not data:
        raise DatasetError(f"{path}: empty file (0 bytes)")
    if data[:2] == b"\xff\xd8" and not jpeg_is_complete(data):
        raise DatasetError(f"{path}: truncated or corrupt JPEG (no end-of-image marker after the last scan, "
                           f"{len(data)} bytes)")
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as error:  # e.g. a header declaring more than OpenCV's 2**30-pixel limit
        reason = str(error).strip().splitlines()[-1]
        raise DatasetError(f"{path}: OpenCV refuses to decode it ({reason})") from None
    if decoded is None:
        raise DatasetError(f"{path}: not a readable image (OpenCV cannot decode it; truncated or not an image)")
    return decoded


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3 (grey photos are expanded, an alpha channel dropped, EXIF orientation applied by OpenCV)."""
    return cv2.cvtColor(_decode_file(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _size_text(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _check_size(label: np.ndarray, path: Path, image_hw: tuple[int, int]) -> None:
    if label.shape[:2] != tuple(image_hw):
        hint = (" (transposed: labels follow the image as displayed, after its EXIF orientation is applied)"
                if label.shape[:2] == tuple(image_hw)[::-1] else "")
        raise DatasetError(f"{path}: label is {_size_text(label.shape)} but its image is {_size_text(image_hw)} "
                           f"(W x H){hint}")


def _check_opaque(path: Path) -> None:
    """A grey label stored as a PNG with an alpha channel must be fully opaque: OpenCV's grey conversion drops the
    alpha channel, so a mask kept in the alpha of an RGBA file would silently read as its (often black) colour."""
    with path.open("rb") as file:
        head = file.read(26)
    if not (head.startswith(PNG_SIGNATURE) and len(head) == 26 and head[25] in PNG_ALPHA_COLOR_TYPES):
        return
    raw = _decode_file(path, cv2.IMREAD_UNCHANGED)
    if raw.ndim == 3 and raw.shape[2] in (2, 4) and raw[..., -1].min() < np.iinfo(raw.dtype).max:
        raise DatasetError(f"{path}: the label has transparent pixels (a mask in the alpha channel?); grey labels "
                           "are read from the colour channels: save it as a single-channel grey PNG")


def _mask_scale(raw: np.ndarray, path: Path) -> int:
    """The mask's level (1 for a 0/1 mask, 255 for 0/255), after checking it is binary up to MASK_TOLERANCE."""
    top = int(raw.max())
    if top <= 1:
        return 1
    if top < 128:
        raise DatasetError(f"{path}: mask values only reach {top}: neither a 0/1 nor a 0/255 mask "
                           "(a class-index map?)")
    between = np.count_nonzero((raw > 32) & (raw < 223)) / raw.size
    if between > MASK_TOLERANCE:
        raise DatasetError(f"{path}: {between:.1%} of the mask's pixels are between 33 and 222 (at most "
                           f"{MASK_TOLERANCE:.0%} allowed for anti-aliased edges): not a binary mask (a soft matte "
                           "belongs in alpha/, a colour or class map needs converting)")
    return 255


def _decode_gray(sample: Sample, image_hw: tuple[int, int], fg_min: int = 128,
                 resize: bool = False) -> np.ndarray:
    """An 8-bit grey label (PNG, JPEG, PBM, ...): alpha = value / 255; mask = value >= ``fg_min`` (0/255 masks)
    or value == 1 (0/1 masks, recognised by a maximum of 1).

    ``resize``: the label may be smaller than its image with the same aspect ratio (CelebAMask-HQ stores its part
    masks at 512x512 for the 1024x1024 photos); it is resized to the image with nearest neighbour, which keeps a
    mask binary (its outline gets 2-pixel steps).
    PBM: OpenCV follows the format (bit 1 = black = 0, bit 0 = white = 255), so white pixels are foreground, as in
    Figaro-1k's ground truth (white = hair).
    """
    _check_opaque(sample.label)
    raw = _decode_file(sample.label, cv2.IMREAD_GRAYSCALE)
    if resize and raw.shape[:2] != tuple(image_hw):
        if raw.shape[0] * image_hw[1] != raw.shape[1] * image_hw[0]:
            raise DatasetError(f"{sample.label}: label is {_size_text(raw.shape)}, not the aspect ratio of its "
                               f"image ({_size_text(image_hw)})")
        raw = cv2.resize(raw, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_NEAREST)
    _check_size(raw, sample.label, image_hw)
    if sample.label_kind == "alpha":
        return raw.astype(np.float32) / 255.0
    scale = _mask_scale(raw, sample.label)
    return (raw >= (1 if scale == 1 else fg_min)).astype(np.float32)


def _decode_index01(sample: Sample, image_hw: tuple[int, int]) -> np.ndarray:
    """PortraitNet's EG1800 labels: 1 = person; 0 and every value > 1 are background (its loader sets > 1 to 0)."""
    raw = _decode_file(sample.label, cv2.IMREAD_GRAYSCALE)
    _check_size(raw, sample.label, image_hw)
    person = raw == 1
    if not person.any() and raw.max() > 1:
        raise DatasetError(f"{sample.label}: no pixel is 1 (person) but values reach {raw.max()}: "
                           "a 0/255 mask where 0/1 labels are expected?")
    return person.astype(np.float32)


def _decode_rgba_alpha(sample: Sample, image_hw: tuple[int, int]) -> np.ndarray:
    """The alpha channel (channel 3) of an RGBA PNG, scaled by the bit depth's maximum (AISegment matting_human)."""
    raw = _decode_file(sample.label, cv2.IMREAD_UNCHANGED)
    if raw.ndim != 3 or raw.shape[2] != 4:
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        raise DatasetError(f"{sample.label}: has {channels} channel(s), no alpha channel to read the matte from")
    _check_size(raw, sample.label, image_hw)
    return raw[:, :, 3].astype(np.float32) / np.iinfo(raw.dtype).max


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """OR ``patch`` into ``canvas`` with its top-left corner at (x, y), clipped to the canvas."""
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + patch.shape[0], canvas.shape[0]), min(x + patch.shape[1], canvas.shape[1])
    if bottom > top and right > left:
        canvas[top:bottom, left:right] |= patch[top - y:bottom - y, left - x:right - x]


def _supervisely_bitmap(bitmap: Mapping, hw: tuple[int, int]) -> np.ndarray:
    """A Supervisely bitmap object: base64 -> zlib -> PNG whose alpha (or only channel) != 0 is the object,
    placed with its top-left corner at ``origin`` [x, y]."""
    png = zlib.decompress(base64.b64decode(bitmap["data"]))
    patch = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if patch is None or (patch.ndim == 3 and patch.shape[2] != 4):
        raise ValueError("bitmap data is not a PNG with an alpha channel or a single channel")
    patch = (patch[:, :, 3] if patch.ndim == 3 else patch) != 0
    canvas = np.zeros(hw, np.uint8)
    x, y = (int(v) for v in bitmap["origin"])
    _paste(canvas, patch.astype(np.uint8), x, y)
    return canvas


def _supervisely_polygon(points: Mapping, hw: tuple[int, int]) -> np.ndarray:
    """A Supervisely polygon: ``exterior`` [[x, y], ...] filled, each of ``interior`` (holes) cleared again."""
    canvas = np.zeros(hw, np.uint8)
    if points["exterior"]:
        cv2.fillPoly(canvas, [np.round(np.asarray(points["exterior"], np.float64)).astype(np.int32)], 1)
    for hole in points.get("interior", []):
        if hole:
            cv2.fillPoly(canvas, [np.round(np.asarray(hole, np.float64)).astype(np.int32)], 0)
    return canvas


def _decode_supervisely(sample: Sample, image_hw: tuple[int, int]) -> np.ndarray:
    """Supervisely JSON: the union of every person object, each rasterised on its own so that one object's hole
    does not erase another object. Classes outside SUPERVISELY_FOREGROUND and geometries other than polygon /
    bitmap are errors (they would otherwise vanish silently)."""
    annotation = json.loads(sample.label.read_text(encoding="utf-8"))
    size = annotation.get("size")
    if size is not None and (size["height"], size["width"]) != tuple(image_hw):
        raise DatasetError(f"{sample.label}: annotation size {size['width']}x{size['height']} but its image is "
                           f"{_size_text(image_hw)} (W x H)")
    mask = np.zeros(image_hw, np.uint8)
    for obj in annotation.get("objects", []):
        if obj.get("classTitle") not in SUPERVISELY_FOREGROUND:
            raise DatasetError(f"{sample.label}: unknown class {obj.get('classTitle')!r} "
                               f"(known: {sorted(SUPERVISELY_FOREGROUND)})")
        geometry = obj.get("geometryType") or ("bitmap" if "bitmap" in obj else "polygon")
        if geometry == "polygon":
            mask |= _supervisely_polygon(obj["points"], image_hw)
        elif geometry == "bitmap":
            mask |= _supervisely_bitmap(obj["bitmap"], image_hw)
        else:
            raise DatasetError(f"{sample.label}: unsupported geometry {geometry!r} (polygon or bitmap)")
    return mask.astype(np.float32)


def _decode_empty(sample: Sample, image_hw: tuple[int, int]) -> np.ndarray:
    """No label file on purpose (a CelebAMask-HQ part that is absent from the photo): all background."""
    return np.zeros(image_hw, np.float32)


LabelDecoder = Callable[[Sample, tuple[int, int]], np.ndarray]
DECODERS: dict[str, LabelDecoder] = {
    "gray": _decode_gray,
    "gray_gt200": partial(_decode_gray, fg_min=201),  # ExtPortraitSeg / Baidu masks: value > 200 is foreground
    "pbm": _decode_gray,                              # same decoding; the name records the file format
    "celeba_hair": partial(_decode_gray, resize=True),
    "index01": _decode_index01,
    "rgba_alpha": _decode_rgba_alpha,
    "supervisely": _decode_supervisely,
    "empty": _decode_empty,
}
"""``Sample.decoder`` -> function(sample, image (H, W)) returning the label as float32 HxW in [0, 1]."""


def decode_label(sample: Sample, image_hw: tuple[int, int]) -> np.ndarray:
    """The label of ``sample`` for an image of size ``image_hw``; any decoding failure is a DatasetError naming
    the label file."""
    try:
        decoder = DECODERS[sample.decoder]
    except KeyError:
        raise ValueError(f"{sample.label}: unknown decoder {sample.decoder!r} (known: {sorted(DECODERS)})") from None
    try:
        return decoder(sample, image_hw)
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zlib.error, cv2.error) as error:
        raise DatasetError(f"{sample.label}: cannot decode the label ({type(error).__name__}: {error})") from error
