"""``portrait-sdk bench``: how fast the preview pipeline runs, stage by stage, and how much its masks flicker.

Speed: the preview's pipeline (decode, pre-process, inference, post-process, effect) runs headless on a video
(default: the sample clip ``samples/portrait_clip.mp4`` under the data root, 640x480) and reports end-to-end FPS
and the mean milliseconds of every stage. Flicker: a static scene (the video's first frame with fresh sensor-like
noise on every frame) goes through ``Segmenter.process`` with each temporal smoothing mode; the mean absolute
frame-to-frame change of the mask says how much a still person's outline would shimmer. No TensorFlow.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.effects import gradient_background
from portrait_sdk.files import atomic_write, data_root
from portrait_sdk.preview.pipeline import STAGES, Pipeline, StageStats, VideoSource, write_image
from portrait_sdk.runtime import Segmenter

SAMPLE_CLIP = Path("samples") / "portrait_clip.mp4"  # under the data root
SMOOTHING_MODES = ("none", "ema", "uncertainty")
TARGET_FPS = 30.0


@dataclass(frozen=True)
class BenchConfig:
    model: Path
    video: Path
    effect: str = "blur"
    frames: int = 200  # measured frames (fewer if the video ends first)
    warmup: int = 10  # frames run before measuring (interpreter and cache warm-up)
    threads: int = 2
    refine: bool = True
    smoothing: str = "uncertainty"  # the preview's default, for the speed run
    flicker_frames: int = 60
    noise: float = 2.0  # std of the Gaussian noise added to the static frame, in 0..255 pixel units


def sample_clip() -> Path:
    """The default video: ``samples/portrait_clip.mp4`` under the data root."""
    return data_root() / SAMPLE_CLIP


def _open(config: BenchConfig, smoothing: str) -> Segmenter:
    return Segmenter.from_file(config.model, num_threads=config.threads, refine=config.refine,
                               smoothing=None if smoothing == "none" else smoothing)


def measure_speed(config: BenchConfig) -> dict:
    """End-to-end FPS (frames / wall time) and mean ms per stage of the pipeline on ``config.video``.

    Also the process's CPU time per frame (all threads): on a machine shared with other jobs wall time grows with
    the contention, whereas ``1000 / cpu_ms_per_frame`` is what one free core alone would reach.
    """
    segmenter = _open(config, config.smoothing)
    source = VideoSource.file(config.video)
    try:
        pipeline = Pipeline(segmenter, config.effect, {"background": gradient_background()})
        for _ in range(config.warmup):
            if pipeline.step(source) is None:
                raise ValueError(f"{config.video}: fewer than {config.warmup} frames, too short to benchmark")
        stats, start, cpu_start = StageStats(), time.perf_counter(), time.process_time()
        while stats.frames < config.frames:
            result = pipeline.step(source)
            if result is None:
                break
            stats.add(result.times_ms)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        source.close()
    if stats.frames == 0:
        raise ValueError(f"{config.video}: no frames left after the {config.warmup} warm-up frames")
    return {"frames": stats.frames, "fps": stats.frames / wall, "ms_per_frame": wall * 1e3 / stats.frames,
            "cpu_ms_per_frame": cpu * 1e3 / stats.frames, "stages_ms": stats.mean_ms(), "card": segmenter.card.name}


def first_frame(video: Path) -> np.ndarray:
    source = VideoSource.file(video)
    try:
        frame = source.read()
    finally:
        source.close()
    if frame is None:
        raise ValueError(f"{video}: no frame could be decoded")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def measure_flicker(config: BenchConfig, frame: np.ndarray) -> dict[str, float]:
    """Mean |mask_t - mask_t-1| over a static scene, per smoothing mode (0 = perfectly steady).

    Every mode sees the same noisy frames (same seed), so the figures differ only by the smoothing.
    """
    result = {}
    for mode in SMOOTHING_MODES:
        segmenter, rng, previous, changes = _open(config, mode), np.random.default_rng(0), None, []
        for _ in range(config.flicker_frames):
            noisy = np.clip(frame + rng.normal(0.0, config.noise, frame.shape), 0, 255).astype(np.uint8)
            mask = segmenter.process(noisy)
            if previous is not None:
                changes.append(float(np.abs(mask - previous).mean()))
            previous = mask
        result[mode] = float(np.mean(changes)) if changes else 0.0
    return result


def run(config: BenchConfig) -> dict:
    """Both measurements and the setting they were taken in, as written to ``bench.json``."""
    speed = measure_speed(config)
    flicker = measure_flicker(config, first_frame(config.video))
    return {"model": speed.pop("card"), "model_path": str(config.model), "video": str(config.video),
            "effect": config.effect, "threads": config.threads, "refine": config.refine,
            "smoothing": config.smoothing, "speed": speed, "target_fps": TARGET_FPS,
            "flicker": {"frames": config.flicker_frames, "noise": config.noise, "mean_abs_change": flicker},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()}}


def format_report(results: dict) -> str:
    speed, flicker = results["speed"], results["flicker"]
    verdict = "meets" if speed["fps"] >= results["target_fps"] else "misses"
    lines = [f"model {results['model']} ({results['model_path']}), effect {results['effect']}, "
             f"{results['threads']} threads, refine {'on' if results['refine'] else 'off'}, "
             f"smoothing {results['smoothing']}",
             f"speed on {Path(results['video']).name}: {speed['frames']} frames, {speed['fps']:.1f} FPS end to end "
             f"({speed['ms_per_frame']:.1f} ms/frame; {verdict} the {results['target_fps']:.0f} FPS target)"]
    lines += [f"  {stage:<13}{ms:7.2f} ms" for stage, ms in speed["stages_ms"].items()]
    lines.append(f"CPU time {speed['cpu_ms_per_frame']:.1f} ms/frame (all threads): "
                 f"{1000 / speed['cpu_ms_per_frame']:.1f} FPS on one otherwise idle core (wall-clock FPS above "
                 "includes waiting for a shared CPU)")
    lines.append(f"flicker: mean |mask change| per frame on a static scene ({flicker['frames']} frames, "
                 f"noise sigma {flicker['noise']:g}):")
    lines += [f"  {mode:<13}{value:9.5f}" for mode, value in flicker["mean_abs_change"].items()]
    return "\n".join(lines)


def _bar_panel(title: str, labels: list[str], values: list[float], unit: str, size=(300, 480)) -> np.ndarray:
    """A horizontal bar chart drawn with OpenCV (white background, one labelled bar per value)."""
    height, width = size
    panel = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(panel, title, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    top, left, right = 44, 120, width - 90
    row = (height - top - 10) / max(1, len(labels))
    peak = max(max(values, default=0.0), 1e-12)
    for i, (label, value) in enumerate(zip(labels, values)):
        y = int(top + i * row)
        bar_end = left + int((right - left) * value / peak)
        cv2.rectangle(panel, (left, y + 4), (max(left + 1, bar_end), int(y + row - 4)), (200, 120, 40), -1)
        middle = int(y + row / 2 + 5)
        cv2.putText(panel, label, (10, middle), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(panel, f"{value:.3g} {unit}", (bar_end + 6, middle), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def chart(results: dict) -> np.ndarray:
    """Stage times and flicker side by side, as an RGB image."""
    speed, flicker = results["speed"], results["flicker"]["mean_abs_change"]
    stages = _bar_panel(f"{results['model']}: {speed['fps']:.1f} FPS, ms per stage", list(STAGES),
                        [speed["stages_ms"][s] for s in STAGES], "ms")
    steadiness = _bar_panel("flicker: mean |mask change|", list(flicker), list(flicker.values()), "")
    return np.hstack([stages, np.full((stages.shape[0], 4, 3), 200, np.uint8), steadiness])


def write_results(results: dict, folder: Path) -> tuple[Path, Path]:
    """``bench.json`` and ``bench.png`` in ``folder`` (written atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, png_path = folder / "bench.json", folder / "bench.png"
    atomic_write(json_path, lambda temp: temp.write_text(json.dumps(results, indent=2)))
    write_image(png_path, chart(results))
    return json_path, png_path
