"""Label unlabeled photos with a teacher model (teacher distillation): ``portrait-sdk pseudolabel``.

The output is a dataset in the generic folder layout (``images/`` + ``alpha/`` with matching stems, and an
``index.csv`` whose rows become each sample's meta: ``label_source`` = "pseudo", ``source``, ``teacher``,
``confidence``), so ``open_dataset(out_dir)`` and the trainer read it like any other folder. The alpha is
the teacher's soft probability, ``round(255 * p)`` as an 8-bit PNG: distillation wants the teacher's uncertainty,
not a thresholded mask.

The teacher runs through the runtime's ``Segmenter``, so a label is exactly what the model gives at inference
(same fitting, normalisation and mapping back to the photo). A Keras teacher (``.keras`` saved by the trainer) is
converted to a float32 ``.tflite`` with the card its architecture's spec implies and run the same way: the
runtime is then the only place that fits a photo to a model, and the label of a Keras teacher equals that of its
float32 export. TensorFlow is imported for that path only.

Every file is written to a temp file and renamed into place (image first, alpha last), so an interrupted run
leaves whole files only; a rerun skips the images whose label exists. The input folder is never written to:
images are hard-linked into ``images/`` (copied where linking fails, e.g. across file systems).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.data import DatasetError, read_image
from portrait_sdk.data.formats import index_csv_meta
from portrait_sdk.files import IMAGE_EXTENSIONS, atomic_write
from portrait_sdk.runtime import Segmenter

LABEL_SOURCE = "pseudo"
INDEX_COLUMNS = ("stem", "label_source", "source", "teacher", "confidence")
REPORT_FILE = "pseudolabel.json"
CONTACT_SHEET = "contact_sheet.png"
SHEET_THUMBNAILS = 24
SHEET_COLUMNS = 6
THUMBNAIL = 160  # cell side in pixels
OVERLAY = (0, 255, 0)  # RGB tint of the foreground on the contact sheet
PROBABILITY_EPS = 1e-7  # keeps logit(p) finite for p = 0 or 1 under a temperature
INDEX_EVERY = 50  # images between rewrites of index.csv, so an interrupted run loses few rows


@dataclass(frozen=True)
class PseudolabelOptions:
    """How the teacher's output becomes labels.

    temperature: p' = sigmoid(logit(p) / T); T > 1 softens towards 0.5, T < 1 sharpens, 1 leaves p as it is.
    min_confidence: images whose mean per-pixel confidence |2p' - 1| is below it are dropped (0 keeps all).
    passes: runs per image of a model that takes the previous mask (4 input channels), each fed the last mask,
        the last one kept (as ``evaluate --passes``); other models run once.
    limit: only the first N images of the folder (sorted by name).
    threads: LiteRT inference threads.
    """

    temperature: float = 1.0
    min_confidence: float = 0.0
    passes: int = 1
    limit: int | None = None
    threads: int = 2

    def check(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class PseudolabelReport:
    """What a run did. ``labelled`` new labels, ``existing`` skipped because labelled before, ``dropped`` below
    min_confidence, ``bad`` unreadable images as 'file: reason'; ``kept`` = labels in the folder now."""

    out_dir: Path
    teacher: str
    images: int
    labelled: int
    existing: int
    dropped: tuple[str, ...]
    bad: tuple[str, ...]
    kept: int
    mean_confidence: float | None  # over the labels in the folder
    mean_confidence_scored: float | None  # over the images scored in this run, dropped ones included
    seconds: float

    def summary(self) -> str:
        mean = "-" if self.mean_confidence is None else f"{self.mean_confidence:.3f}"
        return (f"{self.out_dir}: {self.kept} labelled images ({self.labelled} new, {self.existing} already there), "
                f"{len(self.dropped)} dropped below min-confidence, {len(self.bad)} unreadable, of {self.images}; "
                f"mean confidence {mean}; {self.seconds:.1f} s")


def soften(prob: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T); T = 1 returns ``prob`` untouched (so labels equal the runtime's output exactly)."""
    if temperature == 1:
        return prob
    p = np.clip(prob.astype(np.float64), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return (1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / temperature))).astype(np.float32)


def confidence(prob: np.ndarray) -> float:
    """Mean of |2p - 1|: 1 where the teacher is sure of every pixel, 0 where it says 0.5 everywhere."""
    return float(np.abs(2.0 * prob.astype(np.float32) - 1.0).mean())


def to_alpha(prob: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


@contextlib.contextmanager
def open_teacher(path: str | os.PathLike, threads: int = 2) -> Iterator[Segmenter]:
    """A ``Segmenter`` for a ``.tflite`` (card beside it or metadata inside) or a trainer's ``.keras`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such teacher model file")
    if path.suffix == ".keras":
        with tempfile.TemporaryDirectory(prefix="pseudolabel_teacher_") as folder:
            yield _keras_teacher(path, Path(folder), threads)
    elif path.suffix == ".tflite":
        yield Segmenter.from_file(path, num_threads=threads)
    else:
        raise ValueError(f"{path}: not a teacher model (expected a .tflite file with its card or metadata, or a "
                         ".keras file saved by `portrait-sdk train`)")


def _keras_teacher(path: Path, folder: Path, threads: int) -> Segmenter:
    """The Keras model as a float32 ``.tflite`` in ``folder``, with the card of its architecture's spec."""
    from portrait_sdk.export import architecture_of, inference_graph, load_model, make_card, to_tflite

    model = load_model(path)
    graph = inference_graph(model)
    card = make_card(graph, architecture_of(model), path.stem, "float32")
    converted = folder / f"{path.stem}.tflite"
    converted.write_bytes(to_tflite(graph, "float32"))
    return Segmenter(converted, card, num_threads=threads)


def label_image(segmenter: Segmenter, image: np.ndarray, options: PseudolabelOptions) -> np.ndarray:
    """The teacher's foreground probability for ``image`` (RGB uint8) at its resolution, tempered."""
    if segmenter.card.input.channels == 4:
        segmenter.reset()
        for _ in range(options.passes):
            prob = segmenter.process(image)  # no smoothing (from_file's default): the prior is the last mask
    else:
        prob = segmenter.segment(image)
    return soften(prob, options.temperature)


def pseudolabel(teacher: str | os.PathLike, images_dir: str | os.PathLike, out_dir: str | os.PathLike,
                options: PseudolabelOptions = PseudolabelOptions(),
                progress: Callable[[int, int], None] | None = None) -> PseudolabelReport:
    """Label every image of ``images_dir`` with ``teacher`` into the dataset folder ``out_dir``; see the module.

    ``progress(done, total)`` is called after each image. A rerun into the same folder resumes; it must use the
    same teacher file, temperature and passes (labels of two teachers would mix silently otherwise).
    """
    start = time.perf_counter()
    options.check()
    teacher, images_dir, out_dir = Path(teacher), Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: no such images folder")
    if (out_dir / "images").resolve() == images_dir.resolve():
        raise ValueError(f"{out_dir}: its images/ is the input folder {images_dir}; write to another folder")
    files, bad = _image_files(images_dir, options.limit)
    images = len(files) + len(bad)
    with open_teacher(teacher, options.threads) as segmenter:
        for name in ("images", "alpha"):
            (out_dir / name).mkdir(parents=True, exist_ok=True)
        settings = _settings(teacher, segmenter, images_dir, options)
        _check_resume(out_dir, settings)
        _write_json(out_dir / REPORT_FILE, {**settings, "complete": False})
        source = _source_of(images_dir)
        rows = _index_rows(out_dir, teacher.name, source)
        labelled, existing, dropped, scored = 0, 0, [], []
        for done, path in enumerate(files, 1):
            if path.stem in rows and (out_dir / "images" / path.name).is_file():
                existing += 1
            else:
                try:
                    score = _label_file(segmenter, path, out_dir, options)
                except DatasetError as error:
                    bad.append(str(error))
                else:
                    scored.append(score)
                    if score < options.min_confidence:
                        dropped.append(path.stem)
                    else:
                        rows[path.stem] = _row(path.stem, source, teacher.name, score)
                        labelled += 1
            if done % INDEX_EVERY == 0:
                _write_index(out_dir, rows)
            if progress is not None:
                progress(done, len(files))
    _write_index(out_dir, rows)
    write_contact_sheet(out_dir, sorted(rows))
    kept = [float(row["confidence"]) for row in rows.values()]
    report = PseudolabelReport(
        out_dir=out_dir, teacher=teacher.name, images=images, labelled=labelled,
        existing=existing, dropped=tuple(dropped), bad=tuple(bad), kept=len(rows),
        mean_confidence=round(float(np.mean(kept)), 4) if kept else None,
        mean_confidence_scored=round(float(np.mean(scored)), 4) if scored else None,
        seconds=round(time.perf_counter() - start, 2))
    _write_json(out_dir / REPORT_FILE, {
        **settings, "complete": True,
        "counts": {"images": report.images, "kept": report.kept, "labelled": report.labelled,
                   "existing": report.existing, "dropped": len(dropped), "bad": len(bad)},
        "mean_confidence": report.mean_confidence, "mean_confidence_scored": report.mean_confidence_scored,
        "seconds": report.seconds, "dropped": list(dropped), "bad": list(bad), "contact_sheet": CONTACT_SHEET})
    return report


def _label_file(segmenter: Segmenter, path: Path, out_dir: Path, options: PseudolabelOptions) -> float:
    """Label one photo and return its confidence; image and alpha are written only when it reaches
    min_confidence. Raises DatasetError for an unreadable file."""
    prob = label_image(segmenter, read_image(path), options)
    score = confidence(prob)
    if score >= options.min_confidence:
        _link_or_copy(path, out_dir / "images" / path.name)
        _write_png(out_dir / "alpha" / f"{path.stem}.png", to_alpha(prob))  # last: its presence marks done
    return score


def _image_files(folder: Path, limit: int | None) -> tuple[list[Path], list[str]]:
    """The folder's image files (sorted, the first ``limit``), and a problem line for each stem clash."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    files = files[:limit]
    kept: dict[str, Path] = {}
    clashes = []
    for path in files:
        if path.stem in kept:
            clashes.append(f"{path}: same stem as {kept[path.stem].name} (labels are named by stem)")
        else:
            kept[path.stem] = path
    return list(kept.values()), clashes


def _settings(teacher: Path, segmenter: Segmenter, images_dir: Path, options: PseudolabelOptions) -> dict:
    """What defines the labels: the teacher file (by content) and the options; written first, checked on resume."""
    card = segmenter.card
    return {"teacher": teacher.name, "teacher_path": str(teacher.resolve()),
            "teacher_sha256": hashlib.sha256(teacher.read_bytes()).hexdigest(),
            "teacher_card": {"name": card.name, "architecture": card.architecture, "task": card.task,
                             "precision": card.precision, "input": dataclasses.asdict(card.input)},
            "images_dir": str(images_dir.resolve()), "label_source": LABEL_SOURCE,
            "options": dataclasses.asdict(options)}


RESUME_OPTIONS = ("temperature", "passes")  # the options that change a label (min_confidence only picks them)


def _check_resume(out_dir: Path, settings: dict) -> None:
    """Refuse to resume a folder labelled by another teacher file or with other label-changing options."""
    path = out_dir / REPORT_FILE
    if not path.is_file():
        return
    previous = json.loads(path.read_text())

    def facts(record: dict) -> dict:
        options = record.get("options") or {}
        return {"teacher_sha256": record.get("teacher_sha256"), **{key: options.get(key) for key in RESUME_OPTIONS}}

    old, new = facts(previous), facts(settings)
    if old != new:
        changed = ", ".join(f"{key} {old[key]} -> {new[key]}" for key in old if old[key] != new[key])
        raise ValueError(f"{out_dir}: holds labels by {previous.get('teacher')} made with other settings "
                         f"({changed}); resuming would mix them: write to another folder")


def _source_of(images_dir: Path) -> dict[str, str]:
    """stem -> the input's ``source`` column where an index.csv describes the images (as the readers find it)."""
    return {stem: dict(meta).get("source", "") for stem, meta in index_csv_meta(images_dir).items()}


def _index_rows(out_dir: Path, teacher: str, source: dict[str, str]) -> dict[str, dict]:
    """stem -> index row of the labels already in ``out_dir``; a label written just before an interruption, whose
    row was not yet saved, gets its confidence back from its alpha."""
    rows: dict[str, dict] = {}
    table = out_dir / "index.csv"
    if table.is_file():
        with table.open(newline="", encoding="utf-8") as stream:
            rows = {row["stem"]: row for row in csv.DictReader(stream)}
    labels = {p.stem for p in (out_dir / "alpha").glob("*.png")}
    for stem in sorted(labels - set(rows)):
        alpha = cv2.imread(str(out_dir / "alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        rows[stem] = _row(stem, source, teacher, confidence(alpha / 255.0))
    return {stem: row for stem, row in rows.items() if stem in labels}


def _row(stem: str, source: dict[str, str], teacher: str, score: float) -> dict:
    return {"stem": stem, "label_source": LABEL_SOURCE, "source": source.get(stem, ""), "teacher": teacher,
            "confidence": f"{score:.4f}"}


def _link_or_copy(source: Path, target: Path) -> None:
    def place(temp: Path) -> None:
        try:
            os.link(source, temp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, temp)

    atomic_write(target, place)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode the PNG")
    atomic_write(path, lambda temp: temp.write_bytes(data.tobytes()))


def _write_json(path: Path, record: dict) -> None:
    atomic_write(path, lambda temp: temp.write_text(json.dumps(record, indent=2) + "\n"))


def _write_index(out_dir: Path, rows: dict[str, dict]) -> None:
    def write(temp: Path) -> None:
        with temp.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, INDEX_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows[stem] for stem in sorted(rows))

    atomic_write(out_dir / "index.csv", write)


def write_contact_sheet(out_dir: Path, stems: list[str]) -> Path | None:
    """``contact_sheet.png``: up to SHEET_THUMBNAILS labelled images spread over ``stems``, the alpha tinted
    over each, to see at a glance what the teacher got right and wrong. None when there is nothing to show."""
    if not stems:
        return None
    picks = [stems[i] for i in np.linspace(0, len(stems) - 1, min(SHEET_THUMBNAILS, len(stems))).round().astype(int)]
    images = {p.stem: p for p in (out_dir / "images").iterdir()}
    cells = [_thumbnail(read_image(images[stem]),
                        cv2.imread(str(out_dir / "alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE), stem)
             for stem in dict.fromkeys(picks)]
    rows = -(-len(cells) // SHEET_COLUMNS)
    sheet = np.full((rows * THUMBNAIL, min(len(cells), SHEET_COLUMNS) * THUMBNAIL, 3), 32, np.uint8)
    for i, cell in enumerate(cells):
        top, left = (i // SHEET_COLUMNS) * THUMBNAIL, (i % SHEET_COLUMNS) * THUMBNAIL
        sheet[top:top + THUMBNAIL, left:left + THUMBNAIL] = cell
    path = out_dir / CONTACT_SHEET
    _write_png(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def _thumbnail(image: np.ndarray, alpha: np.ndarray, caption: str) -> np.ndarray:
    scale = THUMBNAIL / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0 * 0.5
    tinted = (small * (1 - a) + np.float32(OVERLAY) * a).round().astype(np.uint8)
    cell = np.full((THUMBNAIL, THUMBNAIL, 3), 32, np.uint8)
    top, left = (THUMBNAIL - size[1]) // 2, (THUMBNAIL - size[0]) // 2
    cell[top:top + size[1], left:left + size[0]] = tinted
    cv2.putText(cell, caption[:22], (3, THUMBNAIL - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                cv2.LINE_AA)
    return cell
