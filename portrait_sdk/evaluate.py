"""``portrait-sdk evaluate``: exported ``.tflite`` files scored on a labelled folder, at each image's own size.

Every model runs through the same runtime the apps use (``portrait_sdk.runtime.Segmenter``: its card's resize,
normalisation and output), so a float, a float16 and an int8 file of one model, and a baseline such as MediaPipe's
selfie model (configured from its metadata), are compared on equal terms. No TensorFlow import.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from portrait_sdk.data import open_dataset
from portrait_sdk.files import atomic_write, data_root
from portrait_sdk.metrics import MattingMeter, SegmentationMeter
from portrait_sdk.runtime import Segmenter


FILE_KEYS = ("model", "precision", "size_mb", "inference_ms_median")  # a result row's facts of the file, not scores


def evaluate_model(model: str | os.PathLike, dataset, threads: int = 2, passes: int = 1) -> dict:
    """Metrics of one model over ``dataset`` (masks: IoU, pooled IoU, boundary F; mattes: SAD, MSE, ...).

    ``passes`` > 1 runs a model that takes the previous mask (4 input channels) that many times on each image,
    feeding each pass's mask to the next, and scores the last: the steady state of a still video, as the hair
    paper evaluates. One pass gives it a zero prior (a first frame). Other models run once either way.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    segmenter = Segmenter.from_file(model, num_threads=threads)
    meter = MattingMeter() if segmenter.card.task == "matting" else SegmentationMeter()
    passes = passes if segmenter.card.input.channels == 4 else 1
    inference_ms = []
    for i in range(len(dataset)):
        image, label = dataset.load(i)
        segmenter.reset()
        for _ in range(passes):
            mask = segmenter.process(image)  # no smoothing (from_file's default): the prior is the last mask
        meter.update(mask, label)
        inference_ms.append(segmenter.timings_ms["inference"])
    return {"model": Path(model).name, "precision": segmenter.card.precision, "passes": passes,
            "size_mb": round(Path(model).stat().st_size / 2**20, 2),
            "inference_ms_median": round(statistics.median(inference_ms), 2),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in meter.result().items()}}


def parse_filters(items: list[str]) -> dict[str, str]:
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--filter takes KEY=VALUE (e.g. label_source=teacher), got {item!r}")
        filters[key] = value
    return filters


def evaluate(models: list[str | os.PathLike], data: str | os.PathLike, filters: dict | None = None,
             threads: int = 2, passes: int = 1) -> dict:
    folder = Path(data)
    folder = folder if folder.is_absolute() or folder.exists() else data_root() / folder
    dataset = open_dataset(folder)
    if filters:
        dataset = dataset.filter(**filters)
    rows = [evaluate_model(model, dataset, threads, passes) for model in models]
    return {"data": str(data), "filters": filters or {}, "images": len(dataset), "results": rows}


def _metric_keys(row: dict) -> tuple[str, ...]:
    return tuple(k for k in row if k not in (*FILE_KEYS, "images", "passes"))


def format_table(report: dict) -> str:
    """One table per metric family (masks: IoU, ...; mattes: SAD, ...), in the order the files were given."""
    families: dict[tuple[str, ...], list[dict]] = {}
    for row in report["results"]:
        families.setdefault(_metric_keys(row), []).append(row)
    tables = []
    for metric_keys, rows in families.items():
        keys = [*FILE_KEYS, *metric_keys]
        table = [keys] + [[str(r[k]) for k in keys] for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(keys))]
        tables.append("\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table))
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items())
    return f"{report['data']} ({report['images']} images{'; ' + filters if filters else ''})\n" + "\n\n".join(tables)


def write_report(report: dict, path: str | os.PathLike) -> None:
    atomic_write(path, lambda temp: temp.write_text(json.dumps(report, indent=2)))
