"""``portrait-sdk release``: rebuild every released model in ``export/`` from the committed weights, in one command.

The manifest (``export/release.toml``) lists each model: its trained weights, optional QAT weights, the images
that calibrate full-integer int8, the validation sets it is scored on, the baselines scored beside it, and the
licence and training-data text of its card; a ``[defaults]`` table holds the keys several models share (a model's
own keys override them). It is checked as recipes are (``portrait_sdk.recipe.parse_table``). For each model the
release

1. exports float32 (the reference, not shipped), float16, full-integer int8 PTQ and, when the manifest names QAT
   weights, QAT int8 to a staging folder;
2. scores every file through the runtime the apps use (``portrait_sdk.evaluate``) on each validation set;
3. keeps the better int8 (PTQ or QAT) as ``<name>_int8.tflite`` and ``<name>_fp16.tflite``, with the scores
   written into the JSON card and into the card copy inside the file's metadata;
4. writes ``report.json``, ``REPORT.md`` (float vs fp16 vs int8: metric, size, latency) and ``report.png``
   (accuracy against latency, baselines included).

Paths in the manifest are relative to the manifest's folder; data folders are relative to the data root
(``$PORTRAIT_SDK_DATA`` or ``../shared/datasets``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from portrait_sdk.files import data_root, write_files
from portrait_sdk.precisions import PRECISIONS
from portrait_sdk.recipe import RecipeError, check_table, parse_table, read_toml

REPORT_JSON = "report.json"
REPORT_MD = "REPORT.md"
REPORT_PNG = "report.png"
INT8_DROP_LIMIT = 0.01  # int8 may lose at most 1 IoU point (or 1 % more error) against float
LOWER_IS_BETTER = {"sad", "mad", "mse", "gradient", "connectivity"}
RELEASED = ("float16", "int8")  # the shipped precisions; int8 is PTQ's or QAT's file, whichever scores better


@dataclass(frozen=True)
class Evaluation:
    """One validation set: a labelled folder under the data root, optionally filtered (index.csv columns);
    ``passes`` as ``portrait_sdk.evaluate.evaluate_model`` (2: a video model's second look at each image)."""
    label: str
    data: str
    filter: dict = field(default_factory=dict)
    passes: int = 1


@dataclass(frozen=True)
class ReleaseEntry:
    """A ``[[model]]`` table over ``[defaults]``. Its paths are written relative to the manifest's folder;
    ``load_manifest`` returns them joined to it."""
    name: str
    weights: str
    representative: str  # the images that calibrate full-integer int8, under the data root
    evaluations: list[Evaluation]  # the first is the one the int8 choice and limit read
    metric: str = "iou"  # the metric that picks PTQ or QAT int8 and bounds the int8 drop
    qat_weights: str = ""
    baselines: list[str] = field(default_factory=list)
    license: str = ""
    training_data: str = ""
    description: str = ""
    # also copy a released file into portrait_sdk/assets/models (the preview's defaults): true for the int8 one,
    # or the suffix of the one to ship ("fp16" where int8 loses too much)
    package: bool | str = False


def _suffix(precision: str) -> str:
    """The file-name suffix a precision is released under (``PRECISIONS``): QAT's int8 ships as int8."""
    return PRECISIONS["int8" if precision == "qat_int8" else precision].suffix


def load_manifest(path: str | os.PathLike) -> list[ReleaseEntry]:
    """Parse and check ``export/release.toml``; every error names the file, the table (the model) and the key."""
    path = Path(path)
    document = read_toml(path, "release manifest")
    unknown = sorted(set(document) - {"defaults", "model"})
    if unknown:
        raise RecipeError(f"{path}: unknown table [{unknown[0]}]; valid tables: [defaults], [[model]]")
    defaults = document.get("defaults", {})
    check_table(ReleaseEntry, defaults, f"{path}: [defaults]", required=False)  # its own errors name it
    models = document.get("model")
    if not isinstance(models, list) or not models:
        raise RecipeError(f"{path}: no [[model]] tables")
    suffixes = " or ".join(f'"{_suffix(precision)}"' for precision in RELEASED)
    base = path.parent
    entries = []
    for i, table in enumerate(models):
        where = f"{path}: [[model]] {table.get('name', i)!r}"
        entry = parse_table(ReleaseEntry, {**defaults, **table}, where)
        if entry.package not in (True, False, *map(_suffix, RELEASED)):
            raise RecipeError(f"{where}: package must be true, false, {suffixes}, got {entry.package!r}")
        entries.append(dataclasses.replace(
            entry, weights=str(base / entry.weights), qat_weights=entry.qat_weights and str(base / entry.qat_weights),
            baselines=[str(base / baseline) for baseline in entry.baselines]))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise RecipeError(f"{path}: model names repeat: {names}")
    return entries


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


def _loss(metric: str, reference: float, value: float) -> float:
    """What ``value`` lost against ``reference``: points of a score, or the relative growth of an error."""
    if metric in LOWER_IS_BETTER:
        return (value - reference) / max(reference, 1e-12)
    return reference - value


def _gpu_parity(path: Path, name: str) -> dict | None:
    """``portrait-sdk gpu-check`` of an int8 candidate: {"passed", "summary"}, or None where this machine has no
    GPU path (named, and the file is released on its accuracy alone). The GPU delegate computes an int8 file in
    floating point; one whose GPU output strays from its CPU output by more than the rule is not released."""
    from portrait_sdk.gpu_check import GpuUnavailableError, check_gpu

    try:
        report = check_gpu(path)
    except GpuUnavailableError as error:
        print(f"  {name}: GPU parity not checked ({str(error).splitlines()[0]})", flush=True)
        return None
    summary = dataclasses.replace(report, path=name).summary()
    print(f"  gpu-check {summary}", flush=True)
    return {"passed": report.passed, "summary": summary}


def int8_verdict(model: dict) -> str:
    """Why a report entry's int8 file does not ship ("" when it does)."""
    if model["int8_released"]:
        return ""
    return "over the 1-point / 1 % limit" if not model["int8_within_limit"] else "GPU and CPU outputs disagree"


def _present_baselines(entry: ReleaseEntry) -> list[Path]:
    """The entry's baseline files that exist (each missing one is named)."""
    baselines = [Path(b) for b in entry.baselines]
    present = [b for b in baselines if b.is_file()]
    for missing in sorted(set(baselines) - set(present)):
        print(f"  baseline {missing} not found; scored without it", flush=True)
    return present


def _keys(files: dict[str, Path], baselines: list[Path]) -> list[str]:
    return list(files) + [f"baseline:{b.stem}" for b in baselines]


def _score(files: dict[str, Path], baselines: list[Path], entry: ReleaseEntry,
           threads: int) -> dict[str, dict[str, dict]]:
    """{evaluation label: {file key: metrics}} for the release's files and the entry's baselines."""
    from portrait_sdk.evaluate import evaluate

    keys = _keys(files, baselines)
    scores = {}
    for evaluation in entry.evaluations:
        report = evaluate([*files.values(), *baselines], evaluation.data, evaluation.filter, threads=threads,
                          passes=evaluation.passes)
        scores[evaluation.label] = {"images": report["images"],
                                    **{key: row for key, row in zip(keys, report["results"])}}
        print(f"  {evaluation.label}: " + ", ".join(
            f"{key} {row[entry.metric]:.4f}" for key, row in zip(keys, report["results"])), flush=True)
    return scores


def _card_metrics(scores: dict, key: str, entry: ReleaseEntry) -> dict:
    from portrait_sdk.evaluate import FILE_KEYS

    metrics = {}
    for evaluation in entry.evaluations:
        row = scores[evaluation.label][key]
        where = evaluation.data + "".join(f", {k}={v}" for k, v in evaluation.filter.items())
        where += f", {evaluation.passes} passes per image" if evaluation.passes > 1 else ""
        metrics[evaluation.label] = {
            "data": f"{where} ({scores[evaluation.label]['images']} images, each at its own size, through the "
                    "runtime)",
            **{k: v for k, v in row.items() if k not in FILE_KEYS}}
    return metrics


def release_model(entry: ReleaseEntry, out_dir: Path, threads: int = 2, latency_runs: int = 50) -> dict:
    """Export, score and write one model's released files; returns its report entry."""
    from portrait_sdk.export import LATENCY_KEY, export_model, load_model, measure_latencies
    from portrait_sdk.metadata import attach_metadata
    from portrait_sdk.model_card import ModelCard, card_path
    from portrait_sdk.quantize import load_qat_model

    if not Path(entry.weights).is_file():
        raise FileNotFoundError(f"{entry.weights}: trained weights of {entry.name!r} not found")
    representative = data_root() / entry.representative
    fields = {k: v for k, v in (("license", entry.license), ("training_data", entry.training_data),
                                ("description", entry.description)) if v}
    with tempfile.TemporaryDirectory(prefix=f"release-{entry.name}-") as staging:
        staging = Path(staging)
        model = load_model(entry.weights)
        # Latency is timed below, every file and baseline together, and written into the cards that ship.
        files = {precision: export_model(model, staging, entry.name, precision, representative,
                                         card_fields=fields, latency_runs=0)
                 for precision in ("float32", *RELEASED)}
        if entry.qat_weights:
            files["qat_int8"] = export_model(load_qat_model(entry.qat_weights), staging, entry.name, "qat_int8",
                                             card_fields=fields, latency_runs=0)
        print(f"{entry.name}: exported {', '.join(files)}; scoring", flush=True)
        baselines = _present_baselines(entry)
        scores = _score(files, baselines, entry, threads)
        # The headline latency and the cards': every file and baseline timed together (``measure_latencies``).
        latency = dict(zip(_keys(files, baselines),
                           measure_latencies([*files.values(), *baselines], latency_runs, threads)))

        primary = entry.evaluations[0].label
        value = {key: scores[primary][key][entry.metric] for key in files}
        int8 = "int8"
        if "qat_int8" in files and _better(entry.metric, value["qat_int8"], value["int8"]):
            int8 = "qat_int8"
        drop = _loss(entry.metric, value["float32"], value[int8])

        # An int8 file that loses more than the limit is not released (an older one is removed): users would
        # take it for the smaller, equally good file; the report still shows its scores.
        within = drop <= INT8_DROP_LIMIT
        gpu = _gpu_parity(files[int8], f"{entry.name}_{_suffix('int8')}.tflite") if within else None
        int8_released = within and (gpu is None or gpu["passed"])
        if not int8_released:
            for stale in (out_dir / f"{entry.name}_{_suffix('int8')}{ext}" for ext in (".tflite", ".json")):
                stale.unlink(missing_ok=True)
        released = {}
        for key in ("float16", int8)[:2 if int8_released else 1]:
            suffix = _suffix(key)
            card = ModelCard.load(card_path(files[key]))
            card = dataclasses.replace(card, name=f"{entry.name}_{suffix}", metrics=_card_metrics(scores, key, entry),
                                       latency_ms={LATENCY_KEY: round(latency[key], 3)})
            target = out_dir / f"{card.name}.tflite"
            write_files({target: attach_metadata(files[key].read_bytes(), card), card_path(target): card.to_json()
                         .encode()})
            released[suffix] = target.name
        if entry.package:
            from portrait_sdk.assets import MODELS_DIR

            wanted = _suffix("int8") if entry.package is True else entry.package
            shipped = released.get(wanted) or released[_suffix("float16")]  # an int8 over the limit: float16
            for name in (shipped, Path(shipped).with_suffix(".json").name):
                shutil.copyfile(out_dir / name, MODELS_DIR / name)
            for suffix in map(_suffix, RELEASED):  # one packaged file per model: the other precision goes
                other = MODELS_DIR / f"{entry.name}_{suffix}.tflite"
                if other.name != shipped:
                    other.unlink(missing_ok=True)
                    other.with_suffix(".json").unlink(missing_ok=True)

    return {"name": entry.name, "metric": entry.metric, "int8_choice": int8,
            "int8_drop": round(drop, 4), "int8_within_limit": within, "int8_gpu": gpu,
            "int8_released": int8_released,
            "files": released, "scores": scores,
            "latency_ms": {key: round(ms, 3) for key, ms in latency.items()}, "latency_runs": latency_runs}


def release(manifest: str | os.PathLike, only: list[str] | None = None, threads: int = 2,
            latency_runs: int = 50) -> dict:
    """Rebuild the manifest's models (or ``only`` those) into the manifest's folder and rewrite the report."""
    manifest = Path(manifest)
    entries = load_manifest(manifest)
    unknown = sorted(set(only or ()) - {e.name for e in entries})
    if unknown:
        raise ValueError(f"{manifest}: no model named {unknown[0]!r}; models: {', '.join(e.name for e in entries)}")
    out_dir = manifest.parent
    report_path = out_dir / REPORT_JSON
    previous = json.loads(report_path.read_text())["models"] if report_path.is_file() else []
    done = {m["name"]: m for m in previous}
    for entry in entries:
        if only and entry.name not in only:
            continue
        done[entry.name] = release_model(entry, out_dir, threads, latency_runs)
        _write_report(out_dir, [done[e.name] for e in entries if e.name in done])
    return {"models": [done[e.name] for e in entries if e.name in done]}


def _write_report(out_dir: Path, models: list[dict]) -> None:
    report = {"models": models}
    write_files({out_dir / REPORT_JSON: json.dumps(report, indent=2).encode(),
                 out_dir / REPORT_MD: report_markdown(models).encode(),
                 out_dir / REPORT_PNG: report_chart(models)})


_SHOWN = {"iou": "IoU", "pooled_iou": "pooled IoU", "boundary_f": "boundary F", "sad": "SAD", "mse": "MSE",
          "gradient": "gradient", "connectivity": "connectivity"}
_ROW_NAMES = {"float32": "float32 (reference, not shipped)", "float16": "`{name}_fp16.tflite`",
              "int8": "`{name}_int8.tflite` (full-integer PTQ)", "qat_int8": "`{name}_int8.tflite` (QAT)"}


def report_markdown(models: list[dict]) -> str:
    """The float vs fp16 vs int8 tables, one per model and validation set."""
    lines = ["# Release report", "",
             "Written by `uv run --extra train portrait-sdk release export/release.toml`. Every file is scored through"
             " the runtime (`portrait_sdk.runtime.Segmenter`, as the apps run it) on each validation image at its own "
             "size. Latency: median `invoke` ms with ai-edge-litert (XNNPACK, 2 threads) on the machine that ran the "
             "release: each model's headline line times its files and baselines together, round by round (compare "
             "those ratios); the tables' ms column is the median while scoring, one file after another. IoU: "
             "foreground = probability >= 0.5, mean over images (pooled beside it). Mattes: SAD and gradient error "
             "summed over the image / 1000, MSE per pixel (Deep Image Matting's conventions), mean over images. An "
             "int8 file ships when it loses at most 1 point (1 %) on the model's first evaluation and, where the "
             "release machine has LiteRT's GPU path, passes `portrait-sdk gpu-check`.", ""]
    for model in models:
        drop = f"{model['int8_drop'] * 100:+.2f}"
        unit = (" IoU points" if model["metric"] not in LOWER_IS_BETTER
                else f" % {_SHOWN.get(model['metric'], model['metric'])}")
        reason = int8_verdict(model)
        verdict = f" (**{reason}: not released**)" if reason else ""
        lines += [f"## {model['name']}", "",
                  f"int8 release: {'QAT' if model['int8_choice'] == 'qat_int8' else 'full-integer PTQ'}; "
                  f"loss against float32: {drop}{unit}{verdict}.", ""]
        if model["int8_gpu"]:
            lines += [f"GPU parity of the int8 file (`portrait-sdk gpu-check`): {model['int8_gpu']['summary']}", ""]
        lines += [_latency_line(model), ""]
        for label, rows in model["scores"].items():
            keys = [k for k in next(r for k, r in rows.items() if k != "images") if k in _SHOWN]
            lines += [f"{label} ({rows['images']} images)", "",
                      "| file | size MiB | ms | " + " | ".join(_SHOWN[k] for k in keys) + " |",
                      "|---|---|---|" + "---|" * len(keys)]
            for key, row in rows.items():
                if key == "images":
                    continue
                title = (f"baseline `{key.split(':', 1)[1]}`" if key.startswith("baseline:")
                         else _ROW_NAMES[key].format(name=model["name"]))
                if "int8" in key and not model["int8_released"]:
                    title += " (not released)"
                lines.append(f"| {title} | {row['size_mb']} | {row['inference_ms_median']} | "
                             + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")
            lines.append("")
    return "\n".join(lines)


def _latency_line(model: dict) -> str:
    """"Latency, timed together: float16 2.3 ms (0.95x baseline), ..." for a model's report entry."""
    latency = model["latency_ms"]
    baselines = [key for key in latency if key.startswith("baseline:")]
    parts = []
    for key, ms in latency.items():
        name = key.split(":", 1)[1] if key in baselines else key
        ratios = [f"{ms / latency[b]:.2f}x {b.split(':', 1)[1]}" for b in baselines if b != key and latency[b] > 0]
        parts.append(f"{name} {ms:.2f} ms" + (f" ({', '.join(ratios)})" if ratios and key not in baselines else ""))
    return f"Latency, timed together ({model['latency_runs']} rounds): " + "; ".join(parts) + "."


def report_chart(models: list[dict]) -> bytes:
    """PNG: the primary metric against inference ms, one panel per model, baselines included."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(max(len(models), 1), 3)
    rows = -(-max(len(models), 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax, model in zip(axes.flat, models):
        label, rows = next(iter(model["scores"].items()))
        for key, row in rows.items():
            if key == "images":
                continue
            ms = model["latency_ms"][key]
            ax.scatter(ms, row[model["metric"]], s=40, marker="x" if key.startswith("baseline:") else "o")
            ax.annotate(key.replace("baseline:", ""), (ms, row[model["metric"]]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"{model['name']} ({label})", fontsize=9)
        ax.set_xlabel("inference ms (CPU, 2 threads)")
        ax.set_ylabel(_SHOWN.get(model["metric"], model["metric"]) + (" (lower is better)" if model["metric"]
                                                                        in LOWER_IS_BETTER else ""))
        ax.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
