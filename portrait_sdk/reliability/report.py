"""docs/RELIABILITY.md from the figures of ``python -m portrait_sdk.reliability`` (docs/reliability.json)."""

from __future__ import annotations

import numpy as np

COMMAND = "uv run --group dev python -m portrait_sdk.reliability"
CI_TESTS = ("tests/test_fuzz_readers.py", "tests/test_kill_train.py", "tests/test_serve_reliability.py",
            "tests/test_preview_faults.py")
FINDINGS = (
    ("readers", "A mask kept in the alpha channel of an RGBA PNG label (colour black or white) was read as its colour: "
     "an all-background or all-foreground mask, accepted silently (16 of 20 RGBA cases per 240 before the fix).",
     "Labels with transparent pixels are refused, naming the file (`data.labels._check_opaque`)."),
    ("readers", "An image header declaring more than OpenCV's 2^30 pixels raised a bare `cv2.error` out of "
     "`validate` (4 of 10 huge-size cases per 120).", "It is a `DatasetError` naming the file."),
    ("readers", "A label the size of its image transposed (an EXIF-rotated photo, label drawn on the stored pixels) "
     "gave a size-mismatch message with no clue.", "The message says labels follow the image as displayed."),
    ("models", "Card fields of the wrong type (`input` a number, `mean` a string, `labels` a number, `output` null) "
     "escaped as `TypeError` / `AttributeError` (4 of 10 per 90).", "`ModelCard.check` names each field of the "
     "wrong type; `from_dict` turns the rest into a `ValueError` naming the card."),
    ("kills", "A truncated checkpoint data file made `--resume` die with `IndexError: Read less bytes than "
     "requested`.", "Resume reads each checkpoint back first and skips an unreadable newest one with a warning "
     "(`train.checkpoint_problem`); the one before it is kept (`max_to_keep=2`)."),
    ("service", "A request body that stalls or trickles in (slow loris) held its connection open with no answer "
     "(none after 20 s when tried by hand): uvicorn has no body timeout.", "The body must arrive within `--body-timeout` (default 60 s), else 408 JSON."),
    ("streams", "A camera that stopped delivering frames ended the preview silently; frames of another size were "
     "dropped silently by `cv2.VideoWriter`; a truncated file ended without a word.", "The camera is reopened "
     "(3 tries), else the stream ends with a warning and the output kept; other-size frames are resized into the "
     "video with a warning; an early end and skipped frames are reported."),
)


def _table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _fuzz(title: str, section: str, figures: dict, what: str) -> str:
    if "error" in figures:
        return f"## {title}\n\nNot run: {figures['error']}\n"
    outcomes = sorted({o for counts in figures["by_kind"].values() for o in counts})
    rows = [[kind, sum(counts.values()), *(counts.get(o, 0) for o in outcomes)]
            for kind, counts in figures["by_kind"].items()]
    failures = figures["failures"]
    text = (f"## {title}\n\n{what}\n\n`{COMMAND} --sections {section}` ({figures['cases']} cases, seed "
            f"{figures['budget']['seed']}, {figures['wall_s']} s; slowest case {figures['max_seconds']:.2f} s): "
            f"**{len(failures)} failures**.\n\n" + _table(rows, ["kind", "cases", *outcomes]) + "\n")
    if failures:
        text += "\nFailures:\n\n" + "\n".join(f"- {f['name']}: {f['outcome']}: {f['detail'][:200]}"
                                              for f in failures) + "\n"
    text += "\nOne message per kind (the last case's):\n\n" + "\n".join(
        f"- {kind}: `{detail.splitlines()[0][:160] if detail else ''}`" for kind, detail in figures["examples"].items())
    return text + "\n"


def _kills(figures: dict) -> str:
    if "error" in figures:
        return f"## Killed trainings\n\nNot run: {figures['error']}\n"
    kills, lost = figures["kills"], figures["lost"]
    moments = {}
    for kill in kills:
        moments[kill["moment"]] = moments.get(kill["moment"], 0) + 1
    corrupt = figures["corrupt_resume"] or {}
    rows = [[k["run"], k["moment"], k["reached"], k["checkpoint"], k["lost"]] for k in kills]
    return (
        "## Killed trainings\n\n`portrait-sdk train` on a toy recipe (" + figures["recipe"] + ", the toy "
        "architecture of `reliability/fixtures.py`) SIGKILLed at random moments, then `--resume`d, until the run "
        f"finished. `{COMMAND} --sections kills` ({figures['wall_s']} s).\n\n"
        f"- kills: **{len(kills)}** ({', '.join(f'{n} {m}' for m, n in sorted(moments.items()))})\n"
        f"- steps lost per kill (steps finished, from the progress bar, minus the newest checkpoint's step): "
        f"mean **{np.mean(lost):.2f}**, max **{max(lost)}**, total {sum(lost)} (checkpoints every 2 steps and at "
        "each epoch end)\n"
        "- every resume started at the newest readable checkpoint's step; every checkpoint on disk read back whole "
        "with the optimizer's iterations equal to the global step and its Adam moments saved; one history record "
        f"per epoch at the end: **{len(figures['problems'])} problems**" +
        "".join(f"\n  - {p}" for p in figures["problems"][:10]) + "\n"
        f"- newest checkpoint truncated on purpose (after kill {corrupt.get('run')}): the resume warned "
        f"**{corrupt.get('warned')}**, started at step **{corrupt.get('resumed_step')}** (the checkpoint before it: "
        f"{corrupt.get('expected_step')})\n"
        f"- left behind, harmless: {figures['temp_folders_left']} `ckpt-N_temp` folders of killed writes "
        "(TensorFlow does not remove them; nothing reads them), and "
        f"{figures['stale_entries']} times a state-file entry of an already deleted older checkpoint "
        "(`CheckpointManager` records its state before and after deleting the oldest; resume takes the newest "
        "readable one)\n\n" + _table(rows, ["run", "killed", "step reached", "newest checkpoint",
                                                              "steps lost"]) + "\n")


def _exports(figures: dict) -> str:
    if "error" in figures:
        return f"## Killed exports\n\nNot run: {figures['error']}\n"
    return ("## Killed exports\n\n`portrait-sdk export` (float32, the toy model) SIGKILLed, half the times at a random "
            "moment of its run, half as soon as one of its temp files appeared (an uninterrupted export took "
            f"{figures['export_s']:.1f} s). `{COMMAND} --sections exports` ({figures['wall_s']} s). `portrait-sdk "
            "release` writes through the same `export.write_files` (temp files renamed into place).\n\n"
            f"- kills: **{figures['kills']}** ({figures['during_write']} while a temp file was being written; "
            f"{figures['finished']} runs finished before the kill came)\n- afterwards the `.tflite` + card under "
            f"their final names were absent {figures['absent']} times, complete (the model opens with the runtime) "
            f"{figures['complete']} times, partial **{len(figures['partial'])}** times\n- hidden temp files left "
            f"by a killed process: {figures['temp_left']} (never under the final names)\n")


def _service(figures: dict) -> str:
    if "error" in figures:
        return f"## HTTP service\n\nNot run: {figures['error']}\n"
    schema, load, abuse = figures["schemathesis"], figures["load"], figures["abuse"]
    statuses = ", ".join(f"{status}: {n}" for status, n in schema["statuses"].items())
    rows = [[name, case["status"], f"{case['seconds']:.3f}", "yes" if case["ok"] else "**no**",
             str(case["detail"])[:90]] for name, case in abuse["cases"].items()]
    return (
        f"## HTTP service\n\n`python -m portrait_sdk.serve` on loopback ({figures['options']}), the tiny model. "
        f"`{COMMAND} --sections service` ({figures['wall_s']} s).\n\n"
        f"**schemathesis** (every operation of /openapi.json, check `not_a_server_error`, phases examples, coverage, "
        f"fuzzing and stateful, up to {figures['budget']['schemathesis_examples']} examples each): exit code "
        f"**{schema['returncode']}**, **{schema['cases']}** requests; statuses {statuses}.\n\n"
        f"**Load**: {load['requests']} POST /v1/matte from {load['clients']} concurrent clients over 8 images, every "
        f"answer checked against that image's matte: **{load['throughput_rps']:.0f} requests/s**, latency p50 "
        f"**{load['p50_ms']:.1f} ms**, p95 **{load['p95_ms']:.1f} ms**, p99 **{load['p99_ms']:.1f} ms** (max "
        f"{load['max_ms']:.1f}), errors or mixed-up answers **{load['errors']}**; server RSS "
        f"**{load['rss_before_mib']:.1f} MiB** after a 64-request warm-up, **{load['rss_after_mib']:.1f} MiB** "
        "after the load.\n\n"
        "**Abusive uploads** (each sent on a raw socket while 20 connections sit with unfinished headers and a "
        f"client keeps posting ordinary requests): {sum(c['ok'] for c in abuse['cases'].values())} of "
        f"{len(abuse['cases'])} answered 4xx JSON in time; ordinary requests meanwhile "
        f"{abuse['ordinary_requests']}, failed **{abuse['ordinary_failures']}**.\n\n"
        + _table(rows, ["upload", "status", "seconds", "4xx JSON in time", "detail"]) + "\n")


def markdown(figures: dict) -> str:
    parts = [
        "# Reliability under bad input, faults and load\n\nWritten by `" + COMMAND + "` (all sections, about half "
        "an hour on 2 cores; `--sections NAME ...` re-runs some and keeps the others' figures from "
        "`docs/reliability.json`). The fast versions run in the normal test suite, so `.ci/run` runs them: `"
        + " ".join(CI_TESTS) + "` (a few cases per kind, 2 kills, 120 requests from 8 clients). Outcomes that pass: "
        "`error` (a clear error naming the file), `read` (read correctly, checked against what the file holds), "
        "`kept running` (the preview kept every frame it could read and said what happened); anything else is a "
        "failure.\n",
        "## Findings (found by these runs, fixed)\n\n" + _table([[s, w, f] for s, w, f in FINDINGS],
                                                                ["where", "what broke", "fix"]) + "\n",
    ]
    sections = {
        "readers": lambda f: _fuzz("Fuzzed dataset files", "readers", f, "A dataset of [good sample, the case, good "
                                   "sample] through `data.validate`, then with `skip_bad=True` (the case must be "
                                   "the one counted skip)."),
        "models": lambda f: _fuzz("Fuzzed model files", "models", f, "`Segmenter.from_file` and one frame on a "
                                  "spoilt copy of a tiny `.tflite` (no metadata) or its card; a file that opens must "
                                  "give the unspoilt model's mask."),
        "streams": lambda f: _fuzz("Faulty preview sources", "streams", f, "`python -m portrait_sdk.preview ... "
                                   "--headless --output out.mp4` on damaged files, and on a fake camera (played by a "
                                   "stand-in for `cv2.VideoCapture`)."),
        "kills": _kills, "exports": _exports, "service": _service,
    }
    parts += [render(figures[name]) for name, render in sections.items() if name in figures]
    return "\n".join(parts)


def one_line(name: str, figures: dict) -> str:
    if "error" in figures:
        return figures["error"]
    if "by_kind" in figures:
        return f"{figures['cases']} cases, {len(figures['failures'])} failures"
    if name == "kills":
        return f"{len(figures['kills'])} kills, lost {figures['lost']}, {len(figures['problems'])} problems"
    if name == "exports":
        return f"{figures['kills']} kills, {len(figures['partial'])} partial"
    return f"load {figures['load']['throughput_rps']:.0f} req/s, schemathesis exit {figures['schemathesis']['returncode']}"
