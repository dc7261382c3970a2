"""``portrait-sdk preview`` (also ``python -m portrait_sdk.preview``): live segmentation effects on a webcam, a video
or a photo, in a window with FPS and inference time on screen, or headless into a video / image file.

``portrait-sdk preview --webcam`` needs nothing else: it blurs the background with the packaged portrait model. The
command line (``portrait_sdk.cli``) builds a ``PreviewOptions`` and calls ``run``. No TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk.assets import default_model, model_path, packaged_models
from portrait_sdk.effects import EFFECTS, Color, check_model_task, get_effect, gradient_background
from portrait_sdk.preview.pipeline import (IMAGE_SUFFIXES, FrameResult, ImageSource, Pipeline, Source, StageStats,
                                           VideoSource, VideoWriter, format_stages, image_files, read_rgb,
                                           write_image)
from portrait_sdk.runtime import Segmenter, load_card

KEYS = {
    "q": "quit (also Esc)",
    "e": "next effect (effects without a fitting model are skipped)",
    "m": "next model for the effect (the packaged ones and --model)",
    "b": "next background (replace effect)",
    "c": "next colour (hair-color and nails effects)",
    "s": "save a snapshot of the output (PNG) to --snapshot-dir",
}
KEY_LINE = "q quit  e effect  m model  b background  c colour  s snapshot"  # KEYS, short, on screen
VIDEO_SUFFIXES = (".mp4", ".avi")
COLORS = ((150, 40, 60), (60, 90, 200), (230, 190, 90), (40, 150, 90), (25, 25, 30))
WINDOW = "portrait-sdk preview"
HEADLESS_HINT = "run headless instead: --video FILE (or --image FILE) --headless --output out.mp4 (or out.png)"


class NoDisplayError(RuntimeError):
    """There is no screen to open a window on."""


@dataclass(frozen=True)
class PreviewOptions:
    """What ``run`` shows: a source, a model and an effect, in a window or (``headless``) into ``output``.

    The source is ``video``, else ``image``, else the camera ``camera``. ``model`` is what ``--model`` takes (see
    ``portrait_sdk.assets.resolve_model``); None: the packaged model for the effect.
    """

    video: Path | None = None
    image: Path | None = None
    camera: int = 0
    model: str | None = None
    effect: str = "blur"
    backgrounds: tuple[Path, ...] = ()  # images or folders of them for the replace effect (none: a gradient)
    color: Color | None = None  # hair-color / nails; None: the effect's own
    strength: float | None = None  # blur / dye amount in [0, 1]; None: the effect's own
    gloss: float | None = None  # nail polish gloss in [0, 1]; None: the effect's own
    smoothing: str = "uncertainty"  # temporal smoothing of video masks: uncertainty, ema or none
    refine: bool = True  # guided-filter refinement of the mask
    threads: int = 2  # CPU threads for inference
    headless: bool = False
    output: Path | None = None  # headless: .mp4 / .avi (every frame) or an image (the last frame)
    frames: int = 0  # headless: stop after this many frames (0: at the end of the source)
    snapshot_dir: Path = Path(".")  # where the s key saves snapshots


# Opens and closes a window; OpenCV's Qt backend aborts the whole process when it cannot reach the display, so
# this runs in a child process first.
_WINDOW_PROBE = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


def check_display() -> None:
    """Fail with a hint to run headless where no window can open: no DISPLAY / WAYLAND_DISPLAY on Linux, or
    OpenCV failing to open a window."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(f"no display (neither DISPLAY nor WAYLAND_DISPLAY is set): {HEADLESS_HINT}")
    probe = subprocess.run([sys.executable, "-c", _WINDOW_PROBE], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        reason = next((line for line in probe.stderr.splitlines() if line.strip()), f"exit code {probe.returncode}")
        raise NoDisplayError(f"OpenCV cannot open a window ({reason.strip()}): {HEADLESS_HINT}")


class Preview:
    """What the keys switch between: effects, models (loaded on first use, then kept), backgrounds and colours."""

    def __init__(self, options: PreviewOptions):
        self.options = options
        self.user_model = model_path(options.model) if options.model else None
        self._segmenters: dict[Path, Segmenter] = {}
        self.backgrounds: list[Path | None] = [file for path in options.backgrounds
                                               for file in image_files(path, "background image")] or [None]
        self.colors = [options.color, *COLORS]  # None: the effect's own default colour
        self.background_index = self.color_index = 0
        self.notice = ""
        path = self.user_model or default_model(get_effect(options.effect).tasks)
        segmenter = self._open(path)
        check_model_task(options.effect, segmenter.card.task, path)
        self.pipeline = Pipeline(segmenter, options.effect, self._effect_options())

    def _open(self, path: Path) -> Segmenter:
        if path not in self._segmenters:
            smoothing = None if self.options.smoothing == "none" else self.options.smoothing
            self._segmenters[path] = Segmenter.from_file(path, num_threads=self.options.threads,
                                                         refine=self.options.refine, smoothing=smoothing)
        return self._segmenters[path]

    def _effect_options(self) -> dict:
        entry = self.backgrounds[self.background_index]
        return {"strength": self.options.strength, "gloss": self.options.gloss,
                "color": self.colors[self.color_index],
                "background": gradient_background() if entry is None else read_rgb(entry)}

    def models_for(self, effect: str) -> list[Path]:
        """The models whose task fits ``effect``: --model first, then the packaged ones."""
        tasks = get_effect(effect).tasks
        user = [self.user_model] if self.user_model and load_card(self.user_model).task in tasks else []
        return user + [p for p in packaged_models(tasks) if p != self.user_model]

    def next_effect(self) -> None:
        names = list(EFFECTS)
        start = names.index(self.pipeline.effect)
        skipped = []
        for name in names[start + 1:] + names[:start]:
            if self.pipeline.segmenter.card.task in EFFECTS[name].tasks:
                break
            models = self.models_for(name)
            if models:
                self._use(models[0])
                break
            skipped.append(name)
        else:
            name = self.pipeline.effect
        self.pipeline.effect = name
        self.notice = f"skipped {', '.join(skipped)}: no fitting model (pass --model)" if skipped else ""

    def next_model(self) -> None:
        models = self.models_for(self.pipeline.effect)
        current = self.pipeline.segmenter.path
        index = models.index(current) if current in models else -1
        self._use(models[(index + 1) % len(models)])
        self.notice = "" if len(models) > 1 else "no other model for this effect"

    def _use(self, path: Path) -> None:
        segmenter = self._open(path)
        segmenter.reset()
        self.pipeline.segmenter = segmenter

    def next_background(self) -> None:
        self.background_index = (self.background_index + 1) % len(self.backgrounds)
        self.pipeline.options = self._effect_options()
        entry = self.backgrounds[self.background_index]
        self.notice = f"background {'built-in gradient' if entry is None else entry.name}"

    def next_color(self) -> None:
        self.color_index = (self.color_index + 1) % len(self.colors)
        self.pipeline.options = self._effect_options()
        color = self.colors[self.color_index]
        self.notice = "colour: the effect's default" if color is None else "colour #{:02x}{:02x}{:02x}".format(*color)

    def snapshot(self, result: FrameResult) -> Path:
        folder = Path(self.options.snapshot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"snapshot-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
        write_image(path, result.output)
        self.notice = f"saved {path}"
        return path

    def handle_key(self, key: str, result: FrameResult) -> None:
        actions = {"e": self.next_effect, "m": self.next_model, "b": self.next_background, "c": self.next_color,
                   "s": lambda: self.snapshot(result)}
        if key in actions:
            try:
                actions[key]()
            except (ValueError, FileNotFoundError) as error:  # a bad packaged model or background: keep running
                self.notice = str(error)


def draw_hud(bgr: np.ndarray, lines: list[str]) -> np.ndarray:
    """Text lines over a dark band at the top left of the frame."""
    scale, step = 0.5, 20
    width = max((cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for line in lines), default=0)
    band = bgr[:step * len(lines) + 8, :width + 16]
    band[:] = (band * 0.4).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(bgr, line, (8, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return bgr


def run_window(preview: Preview, source: Source) -> None:
    """Show the output live until q / Esc, the window is closed, or the source ends."""
    cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    stats, interval, loop_fps, last = StageStats(window=30), 1.0 / source.fps, 0.0, time.perf_counter()
    while True:
        result = preview.pipeline.step(source)
        if result is None:
            break
        stats.add(result.times_ms)
        card = preview.pipeline.segmenter.card
        lines = [f"{card.name}  {preview.pipeline.effect}  {loop_fps:.0f} FPS (pipeline {stats.fps():.0f})  "
                 f"inference {stats.mean_ms()['inference']:.1f} ms", format_stages(stats.mean_ms()), KEY_LINE]
        cv2.imshow(WINDOW, draw_hud(cv2.cvtColor(result.output, cv2.COLOR_RGB2BGR),
                                    lines + ([preview.notice] if preview.notice else [])))
        wait_ms = max(1, round((interval - (time.perf_counter() - last)) * 1000))  # play files at their frame rate
        key = cv2.waitKey(wait_ms) & 0xFF
        now = time.perf_counter()
        fps = 1.0 / max(now - last, 1e-6)
        loop_fps, last = (fps if loop_fps == 0 else 0.9 * loop_fps + 0.1 * fps), now
        if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            break
        preview.handle_key(chr(key), result)
    cv2.destroyWindow(WINDOW)


def run_headless(pipeline: Pipeline, source: Source, output: Path, max_frames: int = 0) -> StageStats:
    """Write the output to ``output``: every frame (.mp4 / .avi) or the last one (an image). Ctrl-C stops early."""
    stats, last = StageStats(), None
    writer = None if output.suffix.lower() in IMAGE_SUFFIXES else VideoWriter(output, source.fps)
    with writer or nullcontext():
        try:
            while max_frames <= 0 or stats.frames < max_frames:
                result = pipeline.step(source)
                if result is None:
                    break
                stats.add(result.times_ms)
                if writer is not None:
                    writer.write(result.output)
                last = result.output
        except KeyboardInterrupt:
            pass
        if last is None:
            raise ValueError(f"{source.name}: no frame could be decoded"
                             + (f" ({source.problem})" if source.problem else ""))
    if writer is None:
        write_image(output, last)
    elif writer.resized:
        print(f"warning: {writer.resized} frame(s) of another size were resized to {writer.size[0]}x"
              f"{writer.size[1]}, the size of the first (a video file has one frame size)", file=sys.stderr)
    return stats


def open_source(options: PreviewOptions) -> Source:
    if options.video:
        return VideoSource.file(options.video)
    if options.image:
        return ImageSource(options.image, repeat=not options.headless)
    return VideoSource.camera(options.camera)


def run(options: PreviewOptions) -> int:
    """The preview in a window until q, or headless into ``options.output``; a ValueError / FileNotFoundError /
    NoCameraError / NoDisplayError says what to change."""
    output = options.output
    if options.headless and output is None:
        raise ValueError(f"--headless needs --output FILE ({', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})")
    if output is not None:
        if not options.headless:
            raise ValueError("--output writes a file instead of showing a window: add --headless")
        if output.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
            raise ValueError(f"{output}: unknown output type; use one of {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}")
    if not options.headless:
        check_display()
    source = open_source(options)
    try:
        preview = Preview(options)
        if not options.headless:
            run_window(preview, source)
        else:
            stats = run_headless(preview.pipeline, source, output, options.frames)
    finally:
        source.close()
    if source.problem:  # the stream ended early or had gaps: what was done is kept, and said
        print(f"warning: {source.problem}", file=sys.stderr)
    if not options.headless:
        return 0
    print(f"wrote {output}: {stats.frames} frame(s) from {source.name} with "
          f"{preview.pipeline.segmenter.card.name}, {stats.fps():.1f} FPS; {format_stages(stats.mean_ms())}")
    return 0
