"""``python -m portrait_sdk.preview``: live segmentation effects on a webcam, a video or a photo, in a window with
FPS and inference time on screen, or headless into a video / image file.

``python -m portrait_sdk.preview --webcam`` needs nothing else: it blurs the background with the packaged portrait
model. No TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from portrait_sdk import quiet
from portrait_sdk.assets import default_model, model_path, packaged_models
from portrait_sdk.effects import EFFECTS, get_effect, gradient_background, parse_color
from portrait_sdk.preview.pipeline import (IMAGE_SUFFIXES, FrameResult, ImageSource, NoCameraError, Pipeline,
                                           Source, StageStats, VideoSource, VideoWriter, format_stages,
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


def background_files(paths: list[Path]) -> list[Path]:
    """The image files named by ``--background``: files as given, folders expanded to their images (sorted)."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such background image or folder")
    return files


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot decode this image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class Preview:
    """What the keys switch between: effects, models (loaded on first use, then kept), backgrounds and colours."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.user_model = model_path(args.model) if args.model else None
        self._segmenters: dict[Path, Segmenter] = {}
        self.backgrounds: list[Path | None] = background_files(args.background) or [None]
        self.colors = [args.color, *COLORS]  # None: the effect's own default colour
        self.background_index = self.color_index = 0
        self.notice = ""
        effect = get_effect(args.effect)
        path = self.user_model or default_model(effect.tasks)
        segmenter = self._open(path)
        if segmenter.card.task not in effect.tasks:
            raise ValueError(f"{path}: a {segmenter.card.task} model, but the {args.effect} effect needs a "
                             f"{' or '.join(effect.tasks)} model; choose another --model or --effect")
        self.pipeline = Pipeline(segmenter, args.effect, self._options())

    def _open(self, path: Path) -> Segmenter:
        if path not in self._segmenters:
            smoothing = None if self.args.smoothing == "none" else self.args.smoothing
            self._segmenters[path] = Segmenter.from_file(path, num_threads=self.args.threads,
                                                         refine=self.args.refine, smoothing=smoothing)
        return self._segmenters[path]

    def _options(self) -> dict:
        entry = self.backgrounds[self.background_index]
        return {"strength": self.args.strength, "gloss": self.args.gloss,
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
        self.pipeline.options = self._options()
        entry = self.backgrounds[self.background_index]
        self.notice = f"background {'built-in gradient' if entry is None else entry.name}"

    def next_color(self) -> None:
        self.color_index = (self.color_index + 1) % len(self.colors)
        self.pipeline.options = self._options()
        color = self.colors[self.color_index]
        self.notice = "colour: the effect's default" if color is None else "colour #{:02x}{:02x}{:02x}".format(*color)

    def snapshot(self, result: FrameResult) -> Path:
        folder = Path(self.args.snapshot_dir)
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


def _unit(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


def _color(text: str) -> tuple[int, int, int]:
    try:
        return parse_color(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    keys = "\n".join(f"  {key}  {text}" for key, text in KEYS.items())
    parser = argparse.ArgumentParser(
        prog="python -m portrait_sdk.preview", description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
        epilog=f"keys in the window:\n{keys}\n\nexamples:\n  python -m portrait_sdk.preview --webcam\n"
               "  python -m portrait_sdk.preview --video clip.mp4 --effect replace --background beach.jpg\n"
               "  python -m portrait_sdk.preview --image me.jpg --headless --output blurred.png")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--webcam", action="store_true", help="the default camera (as --camera 0)")
    source.add_argument("--video", type=Path, metavar="FILE", help="a video file")
    source.add_argument("--image", type=Path, metavar="FILE", help="a photo")
    parser.add_argument("--camera", type=int, metavar="N", help="camera index (implies a camera source)")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="a packaged model's name, a released file's name in export/ (e.g. mmnet_int8) or a "
                             ".tflite file with its .json card (default: the packaged model for the effect's task)")
    parser.add_argument("--effect", choices=list(EFFECTS), default="blur", help="default: blur")
    parser.add_argument("--background", type=Path, action="append", default=[], metavar="FILE|DIR",
                        help="background image(s) for the replace effect; repeat, or name a folder")
    parser.add_argument("--color", type=_color, help="colour for hair-color / nails: #RRGGBB or R,G,B")
    parser.add_argument("--strength", type=_unit, help="blur amount / dye amount in [0, 1]")
    parser.add_argument("--gloss", type=_unit, help="nail polish gloss in [0, 1]")
    parser.add_argument("--smoothing", choices=("uncertainty", "ema", "none"), default="uncertainty",
                        help="temporal smoothing of video masks (default: uncertainty)")
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                        help="snap the mask to image edges with a guided filter (default: on)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for inference (default: 2)")
    parser.add_argument("--headless", action="store_true", help="no window: write --output instead")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="with --headless: .mp4 / .avi (every frame) or .png / .jpg (the last frame)")
    parser.add_argument("--frames", type=int, default=0, metavar="N", help="with --headless: stop after N frames")
    parser.add_argument("--snapshot-dir", type=Path, default=Path("."), metavar="DIR",
                        help="where the s key saves snapshots (default: the current folder)")
    parser.add_argument("--verbose", action="store_true",
                        help="show OpenCV's and LiteRT's log lines (camera probing, XNNPACK), quiet by default")
    return parser


def open_source(args: argparse.Namespace) -> Source:
    if args.video:
        return VideoSource.file(args.video)
    if args.image:
        return ImageSource(args.image, repeat=not args.headless)
    return VideoSource.camera(args.camera or 0)


def run(args: argparse.Namespace) -> int:
    if args.headless and args.output is None:
        raise ValueError(f"--headless needs --output FILE ({', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})")
    if args.output is not None:
        if not args.headless:
            raise ValueError("--output writes a file instead of showing a window: add --headless")
        if args.output.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
            raise ValueError(f"{args.output}: unknown output type; use one of "
                             f"{', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}")
    if not args.headless:
        check_display()
    source = open_source(args)
    try:
        preview = Preview(args)
        if not args.headless:
            run_window(preview, source)
        else:
            stats = run_headless(preview.pipeline, source, args.output, args.frames)
    finally:
        source.close()
    if source.problem:  # the stream ended early or had gaps: what was done is kept, and said
        print(f"warning: {source.problem}", file=sys.stderr)
    if not args.headless:
        return 0
    print(f"wrote {args.output}: {stats.frames} frame(s) from {source.name} with "
          f"{preview.pipeline.segmenter.card.name}, {stats.fps():.1f} FPS; {format_stages(stats.mean_ms())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet.configure(args.verbose)
    if not (args.webcam or args.video or args.image or args.camera is not None):
        parser.error("choose a source: --webcam, --camera N, --video FILE or --image FILE")
    try:
        return run(args)
    except (ValueError, FileNotFoundError, NoCameraError, NoDisplayError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
