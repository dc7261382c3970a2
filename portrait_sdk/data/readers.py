"""Readers for the segmentation / matting datasets the SDK trains on, one in-memory interface for all of them.

Every reader returns a :class:`SegmentationDataset` of :class:`Sample` records (paths plus how to decode the label);
nothing is decoded until :meth:`SegmentationDataset.load`. Layouts follow MODELS.md section 8 and
../shared/datasets/README.md. Pairing problems (an image without a label, a label without an image, an empty
folder) are found by the readers; content problems (unreadable or truncated files, size mismatches, masks that are
not binary) by :func:`validate`, which decodes every sample and is meant to run once before training. Both raise
:class:`DatasetError` naming every bad file, or with ``skip_bad=True`` drop the bad samples with a warning.

No TensorFlow here: numpy + OpenCV only.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
LABEL_EXTENSIONS = IMAGE_EXTENSIONS | {".pbm", ".pgm"}
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
FIGARO_STYLES = ("straight", "wavy", "curly", "kinky", "braids", "dreadlocks", "short-men")
"""Figaro-1k's hairstyle classes, 150 frames each in this order (Frame00001-00150 straight, ...)."""


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


@dataclass(repr=False)
class SegmentationDataset:
    """A list of samples read from ``root``; ``skipped`` lists the files a reader dropped (``skip_bad=True``)."""

    samples: list[Sample]
    root: Path
    name: str
    skipped: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    def __repr__(self) -> str:
        return f"SegmentationDataset({self.name!r}, {len(self)} samples, root={str(self.root)!r})"

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``i`` as (RGB uint8 HxWx3, label float32 HxW in [0, 1]: alpha soft, masks exactly 0 / 1)."""
        sample = self.samples[i]
        image = read_image(sample.image)
        return image, decode_label(sample, image.shape[:2])

    def subset(self, samples: Iterable[Sample], name: str) -> SegmentationDataset:
        """A dataset of ``samples`` with the same root; the reader's ``skipped`` stays with the original."""
        return SegmentationDataset(list(samples), self.root, name)

    def split(self, fraction: float, seed: int = 0) -> tuple[SegmentationDataset, SegmentationDataset]:
        """(first, second) with ``round(fraction * len)`` samples in ``first``: ``train, val = ds.split(0.9)``.

        Deterministic: a ``numpy.random.default_rng(seed)`` permutation of the sample order (readers sort their
        samples, so the same files give the same split); each part keeps the original order.
        """
        if not 0 < fraction < 1:
            raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
        n_first = round(fraction * len(self))
        if not 0 < n_first < len(self):
            raise ValueError(f"{self.name}: {len(self)} samples cannot be split {fraction:g} / {1 - fraction:g} "
                             "with both parts non-empty")
        order = np.random.default_rng(seed).permutation(len(self))
        first, second = sorted(order[:n_first]), sorted(order[n_first:])
        return (self.subset((self.samples[i] for i in first), f"{self.name}[split {fraction:g} seed {seed}: 1]"),
                self.subset((self.samples[i] for i in second), f"{self.name}[split {fraction:g} seed {seed}: 2]"))

    def filter(self, **meta: str | Iterable[str]) -> SegmentationDataset:
        """Samples whose meta matches every ``key=value`` (a string, or a collection of accepted strings).

        ``ds.filter(label_source="teacher")``, ``ds.filter(source=("celeb", "figaro"))``. A key no sample has
        raises ValueError (a typo would otherwise silently give an empty dataset).
        """
        known = {key for sample in self.samples for key, _ in sample.meta}
        unknown = sorted(set(meta) - known)
        if unknown:
            raise ValueError(f"{self.name}: no sample has meta {unknown}; known keys: {sorted(known)}")
        accepted = {key: {value} if isinstance(value, str) else set(value) for key, value in meta.items()}

        def matches(sample: Sample) -> bool:
            values = dict(sample.meta)
            return all(values.get(key) in allowed for key, allowed in accepted.items())

        label = ",".join(f"{key}={value}" for key, value in meta.items())
        return self.subset(filter(matches, self.samples), f"{self.name}[{label}]")

    def oversample(self, times: int, **meta: str | Iterable[str]) -> SegmentationDataset:
        """The dataset with the samples matching ``meta`` (as ``filter``) ``times`` times each, the rest once.

        For a part of the data the model must learn but that is rare in it, e.g. the 134 full-body street photos
        among 1585 portrait close-ups: ``ds.oversample(4, source="vikram")``.
        """
        if times < 1:
            raise ValueError(f"oversample times must be >= 1, got {times}")
        extra = self.filter(**meta).samples * (times - 1)
        if times > 1 and not extra:
            raise ValueError(f"{self.name}: no sample matches {meta} to oversample")
        label = ",".join(f"{key}={value}" for key, value in meta.items())
        return self.subset([*self.samples, *extra], f"{self.name}[{label} x{times}]")


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` found: ``dataset`` holds the samples that passed (all of them when nothing was bad)."""

    dataset: SegmentationDataset
    checked: int
    skipped: int
    problems: tuple[str, ...]
    seconds: float


# --- decoding ------------------------------------------------------------------------------------------------------

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


# --- validation ----------------------------------------------------------------------------------------------------

def _warn_skipped(where: str, problems: Sequence[str]) -> None:
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    warnings.warn(f"{where}: skipped {len(problems)} bad file(s):\n  {shown}{more}", stacklevel=3)


def validate(dataset: SegmentationDataset, skip_bad: bool = False) -> ValidationReport:
    """Decode every sample (image and label) once and report what is wrong, before training starts.

    Found: unreadable, empty or truncated images and labels, label sizes differing from their images, masks that
    are not binary (see MASK_TOLERANCE), undecodable annotations. Any of them raises DatasetError listing every
    bad file, unless ``skip_bad``: then the bad samples are dropped with a warning and counted in the report, along
    with those the reader already skipped. An empty dataset (or nothing left) always raises.
    Decoding everything (no header-only shortcut: corrupt data inside a file only shows when decoded) takes about
    2.3 ms per 512-pixel JPEG + PNG pair on one core: the 1,762 portrait pairs in 4.1 s (11.7 s on a busy core).
    """
    start = time.perf_counter()
    if not dataset.samples:
        raise DatasetError(f"{dataset.name}: no samples to validate (root {dataset.root})")
    problems, good = [], []
    for i, sample in enumerate(dataset.samples):
        try:
            dataset.load(i)
        except DatasetError as error:
            problems.append(str(error))
        else:
            good.append(sample)
    if problems and not skip_bad:
        raise DatasetError(f"{dataset.name}: {len(problems)} of {len(dataset)} samples are bad", problems)
    if problems:
        _warn_skipped(dataset.name, problems)
    if not good:
        raise DatasetError(f"{dataset.name}: no usable sample left")
    passed = dataset if not problems else replace(dataset.subset(good, dataset.name), skipped=dataset.skipped)
    return ValidationReport(dataset=passed, checked=len(dataset), skipped=len(dataset.skipped) + len(problems),
                            problems=dataset.skipped + tuple(problems), seconds=time.perf_counter() - start)


# --- readers: shared plumbing --------------------------------------------------------------------------------------

def _existing_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    return root


def _require_dirs(root: Path, *names: str) -> None:
    missing = [name for name in names if not (root / name).is_dir()]
    if missing:
        raise DatasetError(f"{root}: expected folder(s) {', '.join(missing)} are missing")


def _files(folder: Path, pattern: str, extensions: frozenset[str]) -> list[Path]:
    """Files matching ``pattern`` with one of ``extensions`` (any case), hidden files (``._x.jpg``) left out."""
    return sorted(p for p in folder.glob(pattern)
                  if p.suffix.lower() in extensions and not p.name.startswith(".") and p.is_file())


def _index(paths: Iterable[Path], key: Callable[[Path], object], problems: list[str]) -> dict:
    """key -> path; two files with the same key are a problem (which one is meant?) and both are left out."""
    found: dict = {}
    clashes: set = set()
    for path in paths:
        k = key(path)
        if k in found:
            problems.append(f"{path}: same name as {found[k]} (which one is the sample?)")
            clashes.add(k)
        else:
            found[k] = path
    return {k: p for k, p in found.items() if k not in clashes}


def _pair(images: dict, labels: dict, problems: list[str]) -> list[tuple[object, Path, Path]]:
    """(key, image, label) for keys on both sides, sorted by key; one problem line per unmatched file."""
    problems += [f"{path}: image without a label" for k, path in sorted(images.items()) if k not in labels]
    problems += [f"{path}: label without an image" for k, path in sorted(labels.items()) if k not in images]
    return [(k, images[k], labels[k]) for k in sorted(images) if k in labels]


def _finish(root: Path, name: str, samples: list[Sample], problems: list[str], skip_bad: bool,
            looked_for: str) -> SegmentationDataset:
    """The dataset, or DatasetError for pairing problems (unless ``skip_bad``: warn and drop) or no samples."""
    if problems and not skip_bad:
        raise DatasetError(f"{root}: {len(problems)} file(s) cannot be paired", problems)
    if problems:
        _warn_skipped(str(root), problems)
    if not samples:
        raise DatasetError(f"{root}: no image / label pairs found (looked for {looked_for})", problems)
    return SegmentationDataset(samples, root, name, skipped=tuple(problems))


# --- readers -------------------------------------------------------------------------------------------------------

def _index_csv_meta(root: Path) -> dict[str, tuple]:
    """stem -> the row of the nearest ``index.csv`` with a ``stem`` column (in root, one or two levels up),
    as (column, value) pairs; e.g. label_source, source, fg_frac for ../shared/datasets/portrait."""
    for folder in (root, root.parent, root.parent.parent):
        table = folder / "index.csv"
        if not table.is_file():
            continue
        with table.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            if "stem" not in (reader.fieldnames or ()):
                continue
            return {row["stem"]: tuple((k, v) for k, v in row.items() if k != "stem" and k is not None)
                    for row in reader}
    return {}


def from_folder(root: str | Path, labels: str | None = None, skip_bad: bool = False) -> SegmentationDataset:
    """The generic layout: ``images/<stem>.<ext>`` with ``masks/<stem>.<ext>`` (binary, label_kind "mask") or
    ``alpha/<stem>.<ext>`` (soft matte) -- ../shared/datasets/{portrait,hair,nails}/{train,val}.

    ``labels`` picks the label folder ("masks" or "alpha") when both exist. Masks are 0/255 (foreground >= 128) or
    0/1. When an ``index.csv`` with a ``stem`` column sits in root or one or two levels up, its row becomes the
    sample's meta (``ds.filter(label_source="teacher")``); stems it lacks get no meta.
    """
    root = _existing_root(root)
    present = [name for name in ("masks", "alpha") if (root / name).is_dir()]
    if labels is None:
        if len(present) != 1:
            raise DatasetError(f"{root}: expected images/ with exactly one of masks/ or alpha/, found "
                               f"{present or 'neither'} (pass labels='masks' or 'alpha')")
        labels = present[0]
    if labels not in ("masks", "alpha"):
        raise ValueError(f"labels must be 'masks' or 'alpha', got {labels!r}")
    _require_dirs(root, "images", labels)
    problems: list[str] = []
    images = _index(_files(root / "images", "*", IMAGE_EXTENSIONS), lambda p: p.stem, problems)
    label_files = _index(_files(root / labels, "*", LABEL_EXTENSIONS), lambda p: p.stem, problems)
    meta = _index_csv_meta(root)
    kind = "mask" if labels == "masks" else "alpha"
    samples = [Sample(image, label, kind, "gray", meta.get(stem, ()))
               for stem, image, label in _pair(images, label_files, problems)]
    return _finish(root, root.name, samples, problems, skip_bad, f"images/*, {labels}/* with matching stems")


def _id_key(text: str) -> str:
    """Numeric names compare as numbers ('00002', '2' and '00002.png' are one id); others as the stem."""
    stem = text.split(".")[0]
    return str(int(stem)) if stem.isdigit() else stem


def _eg1800_splits(lists: Sequence[tuple[Path, str]], images: dict[str, Path], problems: list[str]) -> dict[str, str]:
    """id -> split name, from the first existing list file of each split; a listed id without an image is a
    problem."""
    splits: dict[str, str] = {}
    loaded: set[str] = set()
    for path, split in lists:
        if split in loaded or not path.is_file():
            continue
        loaded.add(split)
        for line in path.read_text(encoding="utf-8").split():
            key = _id_key(Path(line).name)
            if key not in images:
                problems.append(f"{path}: lists {line} but there is no such image")
            splits.setdefault(key, split)
    return splits


def from_eg1800(root: str | Path, skip_bad: bool = False) -> SegmentationDataset:
    """EG1800 (Shen et al. 2016) in either published copy (MODELS.md section 8):

    - PortraitNet: ``Images/NNNNN.png`` + ``Labels/NNNNN.png``, labels 1 = person, 0 and values > 1 background
      (decoder "index01"); split lists ``eg1800_train.txt`` / ``eg1800_test.txt`` in root, its parent, or the
      PortraitNet repo's ``select_data/`` beside it (``data/EG1800`` + ``data/select_data``).
    - ExtPortraitSeg: ``images_data_crop/NNNNN.jpg`` + ``GT_png/NNNNN_mask.png``, 0/255 with > 200 as person
      (decoder "gray_gt200"); split lists ``train.txt`` / ``val.txt`` of integer ids.

    Samples listed in a split file get meta ``split`` = train / test / val: ``ds.filter(split="train")``.
    """
    root = _existing_root(root)
    if (root / "Images").is_dir():
        image_dir, label_dir, decoder, suffix = "Images", "Labels", "index01", ""
        lists = [(folder / f"eg1800_{split}.txt", split)
                 for folder in (root, root.parent, root.parent / "select_data") for split in ("train", "test")]
    else:
        image_dir, label_dir, decoder, suffix = "images_data_crop", "GT_png", "gray_gt200", "_mask"
        lists = [(root / f"{split}.txt", split) for split in ("train", "val")]
    _require_dirs(root, image_dir, label_dir)
    problems: list[str] = []
    images = _index(_files(root / image_dir, "*", IMAGE_EXTENSIONS), lambda p: _id_key(p.stem), problems)
    labels = _index(_files(root / label_dir, f"*{suffix}.png", frozenset({".png"})),
                    lambda p: _id_key(p.stem.removesuffix(suffix)), problems)
    splits = _eg1800_splits(lists, images, problems)
    samples = [Sample(image, label, "mask", decoder, (("split", splits[k]),) if k in splits else ())
               for k, image, label in _pair(images, labels, problems)]
    return _finish(root, root.name, samples, problems, skip_bad, f"{image_dir}/*, {label_dir}/*{suffix}.png")


def _supervisely_key(path: Path) -> str:
    """Annotation names are ``<stem>.json`` or ``<file>.json`` depending on the release; both map to the stem."""
    name = path.name.removesuffix(".json")
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else name


def from_supervisely(root: str | Path, skip_bad: bool = False) -> SegmentationDataset:
    """Supervisely Persons: ``<subset>/img/<file>`` with ``<subset>/ann/<stem>.json`` or ``<file>.json``
    (``root`` is the folder holding the ds1..ds13 subsets, or one subset). Polygons (with holes) and bitmaps of
    classes person_poly, person_bmp and neutral are person (decoder "supervisely"); meta ``subset`` = folder name.
    """
    root = _existing_root(root)
    subsets = [root] if (root / "img").is_dir() else sorted(p.parent for p in root.glob("*/img") if p.is_dir())
    if not subsets:
        raise DatasetError(f"{root}: no img/ folder in it or in any of its subfolders (Supervisely layout "
                           "<subset>/img + <subset>/ann)")
    problems: list[str] = []
    samples = []
    for subset in subsets:
        _require_dirs(subset, "img", "ann")
        images = _index(_files(subset / "img", "*", IMAGE_EXTENSIONS), lambda p: p.stem, problems)
        labels = _index(_files(subset / "ann", "*.json", frozenset({".json"})), _supervisely_key, problems)
        samples += [Sample(image, label, "mask", "supervisely", (("subset", subset.name),))
                    for _, image, label in _pair(images, labels, problems)]
    return _finish(root, root.name, samples, problems, skip_bad, "<subset>/img/*, <subset>/ann/*.json")


def from_matting_human(root: str | Path, skip_bad: bool = False) -> SegmentationDataset:
    """AISegment matting_human: ``clip_img/<group>/clip_<id>/<name>.jpg`` with the RGBA matte
    ``matting/<group>/matting_<id>/<name>.png`` (alpha = channel 3, decoder "rgba_alpha"); meta ``group``.
    Hidden AppleDouble files (``._*``) shipped in some copies are ignored."""
    root = _existing_root(root)
    _require_dirs(root, "clip_img", "matting")
    problems: list[str] = []
    images = _index(_files(root / "clip_img", "*/clip_*/*", IMAGE_EXTENSIONS),
                    lambda p: (p.parts[-3], p.parent.name.removeprefix("clip_"), p.stem), problems)
    labels = _index(_files(root / "matting", "*/matting_*/*.png", frozenset({".png"})),
                    lambda p: (p.parts[-3], p.parent.name.removeprefix("matting_"), p.stem), problems)
    samples = [Sample(image, label, "alpha", "rgba_alpha", (("group", key[0]),))
               for key, image, label in _pair(images, labels, problems)]
    return _finish(root, root.name, samples, problems, skip_bad,
                   "clip_img/<group>/clip_<id>/*.jpg, matting/<group>/matting_<id>/*.png")


def _figaro_meta(split_folder: str, frame: str) -> tuple:
    number = int(frame.removeprefix("Frame"))
    split = {"Training": "train", "Testing": "test"}.get(split_folder, split_folder)
    style = FIGARO_STYLES[(number - 1) // 150] if 1 <= number <= 150 * len(FIGARO_STYLES) else "unknown"
    return (("split", split), ("style", style))


def from_figaro(root: str | Path, skip_bad: bool = False) -> SegmentationDataset:
    """Figaro-1k (Svanera et al.): ``Original/<Training|Testing>/FrameNNNNN-org.jpg`` with the binary PBM
    ``GT/<Training|Testing>/FrameNNNNN-gt.pbm`` (white = hair, decoder "pbm"); meta ``split`` = train / test and
    ``style`` = the hairstyle class of the frame number (FIGARO_STYLES)."""
    root = _existing_root(root)
    _require_dirs(root, "Original", "GT")
    problems: list[str] = []
    images = _index(_files(root / "Original", "*/*-org.*", IMAGE_EXTENSIONS),
                    lambda p: (p.parent.name, p.stem.removesuffix("-org")), problems)
    labels = _index(_files(root / "GT", "*/*-gt.pbm", frozenset({".pbm"})),
                    lambda p: (p.parent.name, p.stem.removesuffix("-gt")), problems)
    samples = [Sample(image, label, "mask", "pbm", _figaro_meta(*key))
               for key, image, label in _pair(images, labels, problems)]
    return _finish(root, root.name, samples, problems, skip_bad,
                   "Original/<split>/FrameNNNNN-org.jpg, GT/<split>/FrameNNNNN-gt.pbm")


def from_celeba_hair(root: str | Path, missing_as_empty: bool = True, skip_bad: bool = False) -> SegmentationDataset:
    """CelebAMask-HQ hair: ``CelebA-HQ-img/<id>.jpg`` with ``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_hair.png``.

    The 512x512 masks of the 1024x1024 photos are resized to the photo with nearest neighbour (decoder
    "celeba_hair"). CelebAMask-HQ writes no file for a part absent from the photo (bald heads, hats), so with
    ``missing_as_empty`` such a photo gets an all-background mask (decoder "empty", label = the path the file
    would have); otherwise it is an "image without a label" problem.
    """
    root = _existing_root(root)
    _require_dirs(root, "CelebA-HQ-img", "CelebAMask-HQ-mask-anno")
    problems: list[str] = []
    masks = root / "CelebAMask-HQ-mask-anno"
    image_files = _files(root / "CelebA-HQ-img", "*", IMAGE_EXTENSIONS)
    hair_files = _files(masks, "*/*_hair.png", frozenset({".png"}))
    problems += [f"{p}: name is not a CelebA-HQ id" for p in image_files + hair_files
                 if not p.name.split(".")[0].removesuffix("_hair").isdigit()]
    images = _index((p for p in image_files if p.stem.isdigit()), lambda p: int(p.stem), problems)
    labels = _index((p for p in hair_files if p.name.removesuffix("_hair.png").isdigit()),
                    lambda p: int(p.name.removesuffix("_hair.png")), problems)
    if missing_as_empty:
        problems += [f"{path}: label without an image" for k, path in sorted(labels.items()) if k not in images]
        samples = [Sample(image, labels.get(k, masks / str(k // 2000) / f"{k:05d}_hair.png"), "mask",
                          "celeba_hair" if k in labels else "empty") for k, image in sorted(images.items())]
    else:
        samples = [Sample(image, label, "mask", "celeba_hair") for _, image, label in _pair(images, labels, problems)]
    return _finish(root, root.name, samples, problems, skip_bad,
                   "CelebA-HQ-img/<id>.jpg, CelebAMask-HQ-mask-anno/<k>/<id:05d>_hair.png")


# --- format detection ----------------------------------------------------------------------------------------------

def _has(root: Path, *names: str) -> bool:
    return all((root / name).is_dir() for name in names)


FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[..., SegmentationDataset]]] = {
    "folder": (lambda r: _has(r, "images") and (_has(r, "masks") or _has(r, "alpha")), from_folder),
    "eg1800": (lambda r: _has(r, "Images", "Labels") or _has(r, "images_data_crop", "GT_png"), from_eg1800),
    "supervisely": (lambda r: _has(r, "img", "ann") or any(_has(p.parent, "ann") for p in r.glob("*/img")),
                    from_supervisely),
    "matting_human": (lambda r: _has(r, "clip_img", "matting"), from_matting_human),
    "figaro": (lambda r: _has(r, "Original", "GT"), from_figaro),
    "celeba_hair": (lambda r: _has(r, "CelebA-HQ-img", "CelebAMask-HQ-mask-anno"), from_celeba_hair),
}
"""format name -> (layout test on the root folder, reader)."""


def open_dataset(path: str | Path, format: str = "auto", **options) -> SegmentationDataset:
    """Read ``path`` with the reader of ``format`` ("auto": recognise the layout by its folder names).
    ``options`` go to the reader (``skip_bad``, ``labels``, ``missing_as_empty``)."""
    root = _existing_root(path)
    if format == "auto":
        matches = [name for name, (looks_like, _) in FORMATS.items() if looks_like(root)]
        if len(matches) != 1:
            found = f"it matches {matches}" if matches else "it matches none"
            raise DatasetError(f"{root}: cannot tell the dataset format ({found}); pass format= one of "
                               f"{sorted(FORMATS)}")
        format = matches[0]
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; known: {sorted(FORMATS)} or 'auto'")
    return FORMATS[format][1](root, **options)
