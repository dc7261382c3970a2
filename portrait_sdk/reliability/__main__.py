"""``python -m portrait_sdk.reliability``: the full reliability runs, written to docs/RELIABILITY.md.

Sections (``--sections``, all by default): ``readers`` and ``models`` (fuzzed files), ``streams`` (faulty preview
sources), ``kills`` (SIGKILLed trainings), ``exports`` (SIGKILLed exports), ``service`` (schemathesis, load,
abusive uploads). Each section's figures are kept in docs/reliability.json, so that a section can be re-run alone
and the report rewritten with the others. Needs the dev dependencies (schemathesis) and the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from portrait_sdk.files import atomic_write
from portrait_sdk.reliability import report

SECTIONS = ("readers", "models", "streams", "kills", "exports", "service")
DOCS = Path(__file__).resolve().parents[2] / "docs"
FULL = {"readers_per_kind": 100, "models_per_kind": 50, "streams_per_kind": 10, "kills": 20, "corrupt_after": 5,
        "export_kills": 5, "schemathesis_examples": 50, "requests": 2000, "clients": 16, "seed": 0}


def run_section(name: str, work: Path, budget: dict) -> dict:
    """One section's figures (JSON-able)."""
    from portrait_sdk.reliability import fixtures

    seed = budget["seed"]
    if name in ("models", "streams", "service"):
        model = work / "model" / "tiny_portrait.tflite"
        if not model.is_file():
            fixtures.tiny_model(model.parent)
    if name == "readers":
        from portrait_sdk.reliability.fuzz import READER_KINDS, fuzz_readers

        return _fuzz_figures(fuzz_readers(budget["readers_per_kind"] * len(READER_KINDS), seed, work / "readers"))
    if name == "models":
        from portrait_sdk.reliability.fuzz import MODEL_KINDS, fuzz_models

        return _fuzz_figures(fuzz_models(budget["models_per_kind"] * len(MODEL_KINDS), seed, work / "models", model))
    if name == "streams":
        from portrait_sdk.reliability.streams import CAMERA_KINDS, FILE_KINDS, fuzz_streams

        n = budget["streams_per_kind"] * len(FILE_KINDS + CAMERA_KINDS)
        return _fuzz_figures(fuzz_streams(n, seed, work / "streams", model))
    if name == "kills":
        from portrait_sdk.reliability import kills
        from portrait_sdk.reliability.kills import kill_trainings

        recipe = fixtures.toy_recipe(work / "kills", epochs=60, steps_per_epoch=3, checkpoint_every=2)
        result = kill_trainings(recipe, work / "kills" / "run", budget["kills"], steps_per_epoch=3, seed=seed,
                                corrupt_after=budget["corrupt_after"], deadline_s=1800)
        return {"kills": result.kills, "problems": result.problems, "corrupt_resume": result.corrupt_resume,
                "stale_entries": result.stale_entries,
                "temp_folders_left": len(kills.temp_folders(work / "kills" / "run")),
                "seconds": result.seconds, "lost": result.lost, "recipe": "60 epochs x 3 steps, checkpoint_every 2"}
    if name == "exports":
        from portrait_sdk.reliability.kills import kill_exports, train_command

        recipe = fixtures.toy_recipe(work / "exports", epochs=1, steps_per_epoch=3, checkpoint_every=2)
        import subprocess

        subprocess.run(train_command(recipe, work / "exports" / "run", resume=False), capture_output=True,
                       check=True, timeout=1800)
        return kill_exports(work / "exports" / "run" / "best.keras", work / "exports" / "out", budget["export_kills"],
                            seed=seed)
    if name == "service":
        return _service(work, model, budget)
    raise ValueError(f"unknown section {name!r}; known: {SECTIONS}")


def _fuzz_figures(result) -> dict:
    return {"cases": len(result.cases), "by_kind": {k: dict(v) for k, v in result.by_kind().items()},
            "failures": result.failures[:20], "max_seconds": max(c["seconds"] for c in result.cases),
            "examples": {c["kind"]: c["detail"][:200] for c in result.cases}}


def _service(work: Path, model: Path, budget: dict) -> dict:
    from portrait_sdk.reliability import service
    from portrait_sdk.runtime import Segmenter

    max_bytes, body_timeout = 1_000_000, 5.0
    options = ("--max-upload-bytes", str(max_bytes), "--body-timeout", str(body_timeout))
    figures = {"options": " ".join(options)}
    with service.running_service(model.parent, work / "service.log", *options) as live:
        began = time.perf_counter()
        figures["schemathesis"] = service.schemathesis_run(live, budget["schemathesis_examples"], seed=budget["seed"],
                                                           timeout_s=3000)
        figures["schemathesis"]["seconds"] = time.perf_counter() - began
        segmenter = Segmenter.from_file(model)
        images = [service.picture(100 + i) for i in range(8)]
        expected = [np.rint(segmenter.segment(image) * 255) for image in images]
        figures["load"] = service.load_run(live, expected, [service.png(image) for image in images],
                                           budget["requests"], budget["clients"])
        figures["abuse"] = service.abuse_run(live, max_bytes, body_timeout, answer_within_s=body_timeout + 5)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portrait_sdk.reliability", description=__doc__)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--output", type=Path, default=DOCS / "RELIABILITY.md")
    args = parser.parse_args(argv)
    figures_file = args.output.with_name("reliability.json")
    figures = json.loads(figures_file.read_text()) if figures_file.is_file() else {}
    with tempfile.TemporaryDirectory() as work:
        for name in args.sections:
            began = time.perf_counter()
            print(f"{name} ...", flush=True)
            try:
                section = run_section(name, Path(work) / name, FULL)
            except Exception as error:  # noqa: BLE001 -- a section that cannot run is reported, the rest still runs
                section = {"error": f"{type(error).__name__}: {error}"}
            # no machine paths in the committed files: the temporary folder is written as <work>
            figures[name] = json.loads(json.dumps(section, default=str).replace(work, "<work>"))
            figures[name]["wall_s"] = round(time.perf_counter() - began, 1)
            figures[name]["budget"] = FULL
            args.output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(figures_file, lambda temp: temp.write_text(json.dumps(figures, indent=1, default=str)))
            atomic_write(args.output, lambda temp: temp.write_text(report.markdown(figures)))
            print(f"{name}: {report.one_line(name, figures[name])}", flush=True)
    return 0 if not any("error" in figures.get(name, {}) for name in args.sections) else 1


if __name__ == "__main__":
    sys.exit(main())
