"""Formats: the readers of each dataset layout on disk (MODELS.md section 8, ../shared/datasets/README.md) and
``open_dataset``, which recognises the layout by its folder names.

Readers pair images with labels and find the pairing problems (an image without a label, a label without an
image, two files for one sample, an empty folder); they raise :class:`DatasetError` naming every bad file, or with
``skip_bad=True`` drop the bad samples with a warning. They decode nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

from portrait_sdk.data.dataset import SegmentationDataset, warn_skipped
from portrait_sdk.data.labels import DatasetError, Sample
from portrait_sdk.files import IMAGE_EXTENSIONS

LABEL_EXTENSIONS = (*IMAGE_EXTENSIONS, ".pbm", ".pgm")
FIGARO_STYLES = ("straight", "wavy", "curly", "kinky", "braids", "dreadlocks", "short-men")
"""Figaro-1k's hairstyle classes, 150 frames each in this order (Frame00001-00150 straight, ...)."""


# --- shared plumbing -----------------------------------------------------------------------------------------------

def _existing_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    return root


def _require_dirs(root: Path, *names: str) -> None:
    missing = [name for name in names if not (root / name).is_dir()]
    if missing:
        raise DatasetError(f"{root}: expected folder(s) {', '.join(missing)} are missing")


def _files(folder: Path, pattern: str, extensions: Collection[str]) -> list[Path]:
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
        warn_skipped(str(root), problems)
    if not samples:
        raise DatasetError(f"{root}: no image / label pairs found (looked for {looked_for})", problems)
    return SegmentationDataset(samples, root, name, skipped=tuple(problems))


# --- readers -------------------------------------------------------------------------------------------------------

def index_csv_meta(root: Path) -> dict[str, tuple]:
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
    meta = index_csv_meta(root)
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
