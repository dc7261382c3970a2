"""Killed trainings and exports: ``portrait-sdk train`` on a toy recipe (the toy architecture of
:mod:`portrait_sdk.reliability.fixtures`) is SIGKILLed at random moments, about half of
them while TensorFlow writes a checkpoint, then resumed with ``--resume``, over and over until the run finishes.

After every kill each checkpoint on disk must read back whole, and its optimizer's iteration count must equal its
global step (the optimizer state travelled with the weights). Every resume must start at the newest checkpoint's
step, read from the progress bar the resumed process draws first; the steps lost by a kill are the steps the killed
process had finished (its last progress line) minus that step. The finished run must hold one history record per
epoch. ``corrupt_after`` truncates the newest checkpoint's data file once, and the resume must warn and start at
the checkpoint before it. ``kill_exports`` does the same to ``portrait-sdk export``: no partial ``.tflite`` or card
may ever appear under its final name.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from portrait_sdk.reliability.fixtures import CLI_WITH_TOY

PROGRESS = re.compile(r"epoch (\d+)/\d+:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")
POLL_S = 0.002
STEP, ITERATIONS = "step/.ATTRIBUTES/VARIABLE_VALUE", "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass
class KillRun:
    """What ``kill_trainings`` saw: one dict per kill (moment, step reached, checkpoint step, lost steps, resume
    step), the problems found (an empty list is the pass), and the corrupt-checkpoint check's outcome."""

    kills: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    corrupt_resume: dict | None = None
    stale_entries: int = 0  # checkpoint-state entries whose files were already deleted (see ``_inspect``)
    seconds: float = 0.0

    @property
    def lost(self) -> list[int]:
        return [k["lost"] for k in self.kills if k.get("lost") is not None]


def train_command(recipe: Path, run_dir: Path, resume: bool) -> list[str]:
    return [sys.executable, "-c", CLI_WITH_TOY, "train", str(recipe), "--output", str(run_dir),
            *(["--resume"] if resume else [])]


def progress_steps(text: str, steps_per_epoch: int) -> list[int]:
    """Global steps shown by the progress bars in ``text`` (tqdm redraws with carriage returns)."""
    return [(int(epoch) - 1) * steps_per_epoch + int(done) for epoch, done, _ in PROGRESS.findall(text)]


def _checkpoints(run_dir: Path) -> list[str]:
    state = run_dir / "checkpoints" / "checkpoint"
    if not state.is_file():
        return []
    return [str(run_dir / "checkpoints" / p) for p in re.findall(r'all_model_checkpoint_paths: "([^"]+)"',
                                                                 state.read_text())]


def _inspect(run_dir: Path, truncated: set) -> tuple[int, list[str], int]:
    """(the newest readable checkpoint's step, problems, stale entries). Every listed checkpoint must read back, with
    the optimizer's iterations equal to the global step, except one in ``truncated`` (spoilt on purpose, until a
    save replaces it) and a stale entry: CheckpointManager records its state before and again after deleting the
    oldest checkpoint, so a kill in between leaves an older entry whose files are gone (harmless: resume takes the
    newest readable one)."""
    from portrait_sdk.keras_env import tf
    from portrait_sdk.train import checkpoint_problem

    newest, problems, stale = 0, [], 0
    paths = _checkpoints(run_dir)
    for index, path in enumerate(paths):
        problem = checkpoint_problem(path)
        if problem and path in truncated:
            continue
        if problem and index < len(paths) - 1 and not Path(path + ".index").exists():
            stale += 1
            continue
        if problem:
            problems.append(f"{path}: {problem}")
            continue
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        step, iterations = (int(reader.get_tensor(name)) for name in (STEP, ITERATIONS))
        if iterations != step:
            problems.append(f"{path}: global step {step} but the optimizer's iterations are {iterations}")
        if not any(name.startswith("optimizer/_variables/") for name in names):
            problems.append(f"{path}: no optimizer slot variables (Adam moments) saved")
        newest = max(newest, step)
    return newest, problems, stale


def temp_folders(run_dir: Path) -> set[str]:
    """TensorFlow's ``ckpt-N_temp`` folders: one appears while a checkpoint is written (a killed write leaves it)."""
    folder = run_dir / "checkpoints"
    return {p.name for p in folder.iterdir() if "_temp" in p.name} if folder.is_dir() else set()


def _run_until_killed(command: list[str], log: Path, moment: str, delay_s: float, deadline_s: float) -> str | None:
    """Start ``command``; SIGKILL it ``delay_s`` after its first training step, or (moment "checkpoint") during the
    first checkpoint write after that (or 10 s later, if no write is caught). Returns when it
    was killed ("during a checkpoint write" when the write's temp folder was still there, else "between
    checkpoints"), or None when it finished on its own first."""
    run_dir = Path(command[command.index("--output") + 1])
    left = temp_folders(run_dir)  # by earlier killed writes

    def writing() -> bool:
        return bool(temp_folders(run_dir) - left)

    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    started, deadline = None, time.monotonic() + deadline_s
    try:
        while process.poll() is None and time.monotonic() < deadline:
            shown = PROGRESS.findall(log.read_text(errors="replace"))
            if started is None and len({done for _, done, _ in shown}) > 1:  # a step finished (graph traced)
                started = time.monotonic()
            if started is not None:
                waited = time.monotonic() - started
                if waited >= delay_s and (moment != "checkpoint" or writing() or waited > delay_s + 10):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return "during a checkpoint write" if writing() else "between checkpoints"
            time.sleep(POLL_S)
        if process.poll() is None:
            raise TimeoutError(f"{' '.join(command)} ran past {deadline_s:g} s (log: {log})")
        return None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def kill_trainings(recipe: Path, run_dir: Path, kills: int, steps_per_epoch: int, seed: int = 0,
                   corrupt_after: int | None = None, deadline_s: float = 900) -> KillRun:
    """Kill and resume the training of ``recipe`` into ``run_dir`` ``kills`` times, then let it finish; see the
    module docstring. ``corrupt_after``: truncate the newest checkpoint after that many kills (or the first kill
    after it that leaves two checkpoints)."""
    rng = np.random.default_rng(seed)
    result, began = KillRun(), time.perf_counter()
    logs = run_dir.parent / f"{run_dir.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    expected_start, corrupted = 0, set()
    for index in range(kills + 1):
        command, log = train_command(recipe, run_dir, resume=index > 0), logs / f"run-{index:02d}.log"
        if index == kills:
            with log.open("w") as out:
                subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=deadline_s, check=False)
            killed = None
        else:
            killed = _run_until_killed(command, log, "checkpoint" if rng.random() < 0.5 else "step",
                                       float(rng.uniform(0.0, 3.0)), deadline_s)
        text = log.read_text(errors="replace")
        shown = progress_steps(text, steps_per_epoch)
        corrupt = result.corrupt_resume
        if index > 0:
            want = corrupt["expected_step"] if corrupt and corrupt["run"] == index else expected_start
            if not shown or shown[0] != want:
                result.problems.append(f"run {index} resumed at step {shown[:1]}, expected {want} ({log})")
            if corrupt and corrupt["run"] == index:
                corrupt.update(resumed_step=shown[0] if shown else None, warned="unreadable checkpoint" in text)
                if not corrupt["warned"]:
                    result.problems.append(f"run {index}: no warning about the truncated checkpoint ({log})")
        newest, problems, stale = _inspect(run_dir, truncated=corrupted)
        result.problems += problems
        result.stale_entries += stale
        if killed is None:  # finished
            if "best epoch" not in text:
                result.problems.append(f"run {index} did not finish ({log}): {text[-500:]}")
            break
        reached = max(shown, default=None)
        result.kills.append({"run": index, "moment": killed, "reached": reached, "checkpoint": newest,
                             "lost": None if reached is None else max(0, reached - newest)})
        expected_start = newest
        if corrupt_after is not None and index + 1 >= corrupt_after and result.corrupt_resume is None:
            result.corrupt_resume = truncate_newest(run_dir, index + 1)  # None until there are two checkpoints
            corrupted.add(result.corrupt_resume and result.corrupt_resume["path"])
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    epochs = [record["epoch"] for record in metrics.get("history", [])]
    if not epochs or epochs != list(range(1, len(epochs) + 1)):
        result.problems.append(f"history epochs {epochs}: not one record per epoch")
    result.seconds = time.perf_counter() - began
    return result


def truncate_newest(run_dir: Path, next_run: int) -> dict | None:
    """Cut the newest checkpoint's data file in half; the next resume must fall back to the one before it."""
    from portrait_sdk.keras_env import tf

    paths = _checkpoints(run_dir)
    if len(paths) < 2:
        return None
    data = sorted(Path(paths[-1]).parent.glob(Path(paths[-1]).name + ".data-*"))[0]
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    previous = int(tf.train.load_checkpoint(paths[-2]).get_tensor(STEP))
    return {"run": next_run, "path": paths[-1], "expected_step": previous}


def kill_exports(weights: Path, out_dir: Path, kills: int, seed: int = 0, deadline_s: float = 600) -> dict:
    """SIGKILL ``portrait-sdk export WEIGHTS --precision float32`` ``kills`` times: half at a random moment of its
    run, half as soon as one of its temp files appears (while it writes its results); after each, a ``.tflite`` or
    card under its final name must be complete (the model opens with the runtime)."""
    from portrait_sdk.runtime import Segmenter

    rng = np.random.default_rng(seed)
    command = [sys.executable, "-c", CLI_WITH_TOY, "export", str(weights), "--precision", "float32",
               "--output", str(out_dir), "--name", "killed", "--latency-runs", "1"]
    out_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    reference = subprocess.run(command, capture_output=True, text=True, timeout=deadline_s)
    if reference.returncode != 0:
        raise RuntimeError(f"export failed: {reference.stderr[-2000:]}")
    full_s = time.monotonic() - began
    results = {"kills": 0, "during_write": 0, "finished": 0, "complete": 0, "absent": 0, "partial": [],
               "temp_left": 0, "export_s": full_s}
    for index in range(kills):
        for path in out_dir.iterdir():
            path.unlink()
        at_write = index % 2 == 1
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_at, deadline = time.monotonic() + float(rng.uniform(0.2, 1.0)) * full_s, time.monotonic() + deadline_s
        while process.poll() is None and time.monotonic() < deadline:
            writing = any(p.name.startswith(".") for p in out_dir.iterdir())
            if (at_write and writing) or (not at_write and time.monotonic() >= kill_at):
                process.send_signal(signal.SIGKILL)
                results["kills"] += 1
                results["during_write"] += writing
                break
            time.sleep(0.0005 if at_write else 0.01)
        results["finished"] += process.wait() == 0
        model = out_dir / "killed_fp32.tflite"
        if model.exists() or model.with_suffix(".json").exists():
            try:
                Segmenter.from_file(model)
                results["complete"] += 1
            except (ValueError, FileNotFoundError) as error:
                results["partial"].append(str(error))
        else:
            results["absent"] += 1
        results["temp_left"] += sum(1 for p in out_dir.iterdir() if p.name.startswith("."))
    return results
