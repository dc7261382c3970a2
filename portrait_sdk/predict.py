"""``portrait-sdk predict``: a mask, a matte or an effect of every photo, one ``<stem>.png`` per input image.

The input is an image or a folder of images (its image files by suffix, not its subfolders). The model runs
through the runtime's ``Segmenter`` (``segment``: each photo on its own, no smoothing), and the outputs are those of
the HTTP service: ``mask`` is ``/v1/mask``'s binary PNG (``effects.binary_mask``), every other output an effect of
``effects.EFFECTS`` (``matte``: the soft alpha as grey). Each file is written to a temp file renamed into place, so
an interrupted run leaves whole files only.

Whatever concerns every image (the model, the effect, the output folder, two inputs of one stem) fails before
anything is written. A photo that cannot be read is skipped and the run goes on, so one damaged file does not cost
the others; the report lists it by name (and the command exits non-zero). No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from portrait_sdk.assets import resolve_model
from portrait_sdk.effects import (EFFECTS, FOREGROUND_THRESHOLD, Color, binary_mask, check_model_task, get_effect,
                                  gradient_background)
from portrait_sdk.preview.pipeline import IMAGE_SUFFIXES, image_files, read_rgb, write_image
from portrait_sdk.runtime import Segmenter

MASK = "mask"
OUTPUTS = (MASK, *EFFECTS)


@dataclass(frozen=True)
class PredictOptions:
    """What ``predict`` writes. ``model`` is what ``--model`` takes (``assets.resolve_model``); None: the packaged
    model for the output's tasks. ``effect`` is one of ``OUTPUTS``; the effect options are those of the preview."""

    model: str | None = None
    output: Path = Path("predictions")  # the folder of the <stem>.png files
    effect: str = MASK
    threshold: float = FOREGROUND_THRESHOLD  # mask: foreground from this probability
    refine: bool = True  # guided-filter refinement of the mask
    threads: int = 2
    background: Path | None = None  # replace: the background image (None: a built-in gradient)
    color: Color | None = None
    strength: float | None = None
    gloss: float | None = None


@dataclass
class PredictReport:
    model: str  # the model card's name
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<path>: <why>" of every skipped image


def output_tasks(effect: str) -> tuple[str, ...]:
    """The model tasks whose mask suits the output: a mask, like the matte it thresholds, is any model's."""
    return get_effect("matte" if effect == MASK else effect).tasks


def output_paths(files: list[Path], folder: Path) -> list[Path]:
    """``folder/<stem>.png`` per input; a ValueError where two inputs would share one or one would overwrite an
    input."""
    outputs, sources = [folder / f"{file.stem}.png" for file in files], {}
    inputs = {file.resolve() for file in files}
    for file, out in zip(files, outputs):
        if out in sources:
            raise ValueError(f"{sources[out]} and {file} would both be written to {out}: rename one")
        if out.resolve() in inputs:
            raise ValueError(f"{out} would overwrite an input image: choose another --output folder")
        sources[out] = file
    return outputs


def predict(source: Path, options: PredictOptions = PredictOptions(),
            progress: Callable[[int, int], None] | None = None) -> PredictReport:
    """Write the output of every image of ``source`` into ``options.output``; ``progress(done, total)`` after each."""
    if not 0 < options.threshold < 1:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {options.threshold}")
    files = image_files(Path(source))
    if not files:
        raise ValueError(f"{source}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
    outputs = output_paths(files, Path(options.output))
    path = resolve_model(options.model, output_tasks(options.effect))
    segmenter = Segmenter.from_file(path, num_threads=options.threads, refine=options.refine)
    if options.effect != MASK:
        check_model_task(options.effect, segmenter.card.task, path)
    background = read_rgb(options.background) if options.background else gradient_background()
    effect_options = {"color": options.color, "strength": options.strength, "gloss": options.gloss,
                      "background": background}
    Path(options.output).mkdir(parents=True, exist_ok=True)
    report = PredictReport(segmenter.card.name)
    for done, (file, out) in enumerate(zip(files, outputs), 1):
        try:
            image = read_rgb(file)
        except (OSError, ValueError) as error:
            report.failed.append(str(error))
        else:
            alpha = segmenter.segment(image)
            write_image(out, binary_mask(alpha, options.threshold) if options.effect == MASK
                        else EFFECTS[options.effect](image, alpha, **effect_options))
            report.written.append(out)
        if progress is not None:
            progress(done, len(files))
    return report
