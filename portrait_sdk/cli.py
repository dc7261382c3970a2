"""``portrait-sdk MODE ...``: one command grammar for the whole pipeline (also ``python -m portrait_sdk``).

Every mode's options are defined here, once; ``python -m portrait_sdk.preview`` and ``python -m portrait_sdk.serve``
run the preview and serve modes of this parser. A mode hands the library its typed options (``PreviewOptions``,
``PredictOptions``, ``BenchConfig``, ``ServeConfig``...), never the argparse namespace.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

from portrait_sdk import quiet
from portrait_sdk.precisions import PRECISIONS

# The train extra's modules (pyproject.toml): without them a training command says how to install them.
TRAIN_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "mediapipe", "matplotlib", "tensorboard")
VERBOSE_HELP = "show the native libraries' log lines (TensorFlow, OpenCV, LiteRT), quiet by default"
MODEL_HELP = ("a packaged model's name, a released file's name in export/ (e.g. mmnet_int8) or a .tflite file with its "
              ".json card (default: the packaged model for the effect's task)")


def _options(cls, args: argparse.Namespace, **values):
    """A library's options dataclass from the parsed arguments: each field from the argument of its name, or from
    ``values`` (for the few that the command line spells otherwise)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in values}, **values)


def _error(mode: str, error: Exception) -> int:
    """A problem the user can fix, said in one line: ``portrait-sdk MODE: error: ...``, exit code 2."""
    print(f"portrait-sdk {mode}: error: {error}", file=sys.stderr)
    return 2


def _progress(mode: str) -> Callable[[int, int], None]:
    """``progress(done, total)`` of a long loop: ``MODE done/total`` on one stderr line, every 25 and at the end."""
    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            print(f"\r{mode} {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return progress


def _format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def cmd_models(args) -> int:
    from portrait_sdk.zoo import load_zoo, measure_zoo, write_zoo

    if args.measure:
        print(f"wrote {write_zoo(measure_zoo())}")
    rows = load_zoo(args.task)
    header = ("name", "task", "input", "params", "MACs", "official (params / MACs)", "output")
    table = [header]
    for r in rows:
        ref = r["reference"]
        official = "-" if ref is None else (f"{_format_count(ref['params'])} / {_format_count(ref['macs'])} "
                                            f"@{ref['input_size'][0]}x{ref['input_size'][1]}")
        table.append((r["name"], r["task"], r["input"], _format_count(r["params"]), _format_count(r["macs"]),
                      official, r["output"]))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def cmd_train(args) -> int:
    from portrait_sdk.recipe import load_recipe

    recipe = load_recipe(args.recipe)  # checked before TensorFlow is imported
    from portrait_sdk.train import Trainer

    run_dir = args.output or Path("runs") / recipe.name
    if args.reschedule and not args.resume:
        raise SystemExit("--reschedule goes with --resume")
    best = Trainer(recipe, run_dir, progress=not args.quiet).fit(resume=args.resume, reschedule=args.reschedule)
    print(f"best epoch {best.get('epoch')}: {recipe.train.metric} = {best.get('val_' + recipe.train.metric)}; "
          f"weights in {Path(run_dir) / 'best.keras'}")
    return 0


def cmd_export(args) -> int:
    import json

    from portrait_sdk.export import LATENCY_KEY, export_model, load_model, precision_spec
    from portrait_sdk.model_card import ModelCard, card_path

    for precision in args.precision:
        precision_spec(precision)  # a typo fails before the weights are loaded
    model = load_model(args.weights)
    fields = {key: value for key, value in (("description", args.description), ("version", args.version),
                                            ("license", args.license), ("training_data", args.training_data))
              if value is not None}
    if args.metrics:
        fields["metrics"] = json.loads(args.metrics.read_text())
    for precision in args.precision:
        path = export_model(model, args.output, args.name or args.model or model.name, precision,
                            representative_data=args.representative, card_fields=fields, architecture=args.model,
                            latency_runs=args.latency_runs)
        latency = ModelCard.load(card_path(path)).latency_ms[LATENCY_KEY]
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB  {latency:.2f} ms (CPU, 2 threads)")
    return 0


def cmd_release(args) -> int:
    from portrait_sdk.release import REPORT_MD, release

    report = release(args.manifest, only=args.only, threads=args.threads, latency_runs=args.latency_runs)
    for model in report["models"]:
        print(f"{model['name']}: {', '.join(model['files'].values())}; int8 ({model['int8_choice']}) loses "
              f"{model['int8_drop']:+.4f} {model['metric']} against float32"
              + ("" if model["int8_within_limit"] else "  OVER THE LIMIT")
              + ("  GPU MISMATCH" if model["int8_within_limit"] and not model["int8_released"] else ""))
    print(f"report: {Path(args.manifest).parent / REPORT_MD}")
    return 0


def cmd_bench(args) -> int:
    from portrait_sdk import bench  # no TensorFlow
    from portrait_sdk.assets import resolve_model
    from portrait_sdk.effects import get_effect

    config = bench.BenchConfig(model=resolve_model(args.model, get_effect(args.effect).tasks),
                               video=args.video or bench.sample_clip(), effect=args.effect, frames=args.frames,
                               warmup=args.warmup, threads=args.threads, refine=args.refine,
                               flicker_frames=args.flicker_frames, noise=args.noise)
    results = bench.run(config)
    print(bench.format_report(results))
    if args.output:
        for path in bench.write_results(results, args.output):
            print(f"wrote {path}")
    return 0


def cmd_preview(args) -> int:
    from portrait_sdk.preview.app import NoDisplayError, PreviewOptions, run
    from portrait_sdk.preview.pipeline import NoCameraError

    try:
        return run(_options(PreviewOptions, args, backgrounds=tuple(args.background), camera=args.camera or 0))
    except (NoCameraError, NoDisplayError) as error:
        return _error(args.mode, error)


def cmd_predict(args) -> int:
    from portrait_sdk.predict import PredictOptions, predict

    progress = _progress("predict") if args.input.is_dir() and not args.quiet else None
    report = predict(args.input, _options(PredictOptions, args), progress)
    for problem in report.failed:
        print(f"skipped {problem}", file=sys.stderr)
    skipped = f"; skipped {len(report.failed)} unreadable image(s)" if report.failed else ""
    print(f"wrote {len(report.written)} {args.effect} file(s) to {args.output} with {report.model}{skipped}")
    return 1 if report.failed else 0


def cmd_serve(args) -> int:
    import uvicorn

    from portrait_sdk.serve import ServeConfig, UploadLimits, create_app

    def given(**values) -> dict:  # options left out keep the ServeConfig / UploadLimits defaults
        return {name: value for name, value in values.items() if value is not None}

    limits = UploadLimits(**given(max_bytes=args.max_upload_bytes, max_pixels=args.max_pixels,
                                  body_timeout_s=args.body_timeout))
    config = ServeConfig(limits=limits, **given(models=args.models, pool_size=args.pool_size,
                                                num_threads=args.threads, tasks_vision=args.tasks_vision))
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_gpu_check(args) -> int:
    from portrait_sdk.gpu_check import GpuUnavailableError, check_gpu

    passed = True
    for path in args.models:
        try:
            report = check_gpu(path, atol=args.atol)
        except GpuUnavailableError as error:
            return _error(args.mode, error)
        print(report.summary(), flush=True)
        passed = passed and report.passed
    return 0 if passed else 1


def cmd_qat(args) -> int:
    from portrait_sdk.recipe import load_recipe

    recipe = load_recipe(args.recipe)  # checked before TensorFlow is imported
    from portrait_sdk.quantize import REPORT_FILE, run_qat

    run_dir = Path(args.output or Path("runs") / f"{recipe.name}_qat")
    report = run_qat(recipe.path, run_dir, weights=args.weights, epochs=args.epochs,
                     learning_rate=args.learning_rate, resume=args.resume, progress=not args.quiet)
    metric = report["metric"]
    print(f"{recipe.model.name} {metric}: float {report['float'][metric]:.4f}, QAT (simulated int8) "
          f"{report['qat'][metric]:.4f} at epoch {report['qat_epoch']} ({report['change']:+.4f}); "
          f"report in {run_dir / REPORT_FILE}, model in {run_dir / report['qat_model']}")
    return 0


def cmd_evaluate(args) -> int:
    from portrait_sdk.evaluate import evaluate, format_table, parse_filters, write_report

    report = evaluate(args.models, args.data, parse_filters(args.filter), threads=args.threads, passes=args.passes)
    if args.output:  # first: the scores are kept whatever printing them does
        write_report(report, args.output)
    print(format_table(report))
    return 0


def cmd_pseudolabel(args) -> int:
    from portrait_sdk.pseudolabel import PseudolabelOptions, pseudolabel  # TensorFlow only for a .keras teacher

    options = PseudolabelOptions(temperature=args.temperature, min_confidence=args.min_confidence,
                                 passes=args.passes, limit=args.limit, threads=args.threads)
    report = pseudolabel(args.teacher, args.images, args.output, options,
                         progress=None if args.quiet else _progress(args.mode))
    for problem in report.bad:
        print(f"skipped {problem}", file=sys.stderr)
    print(report.summary())
    print(f"contact sheet: {report.out_dir / 'contact_sheet.png'}")
    return 0


def _unit(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


def _color(text: str) -> tuple[int, int, int]:
    from portrait_sdk.effects import parse_color

    try:
        return parse_color(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_model_options(mode: argparse.ArgumentParser, threads: int, refine: bool) -> None:
    """--model, --threads and --refine: which model runs and how, for the modes that run one on frames."""
    mode.add_argument("--model", metavar="NAME|PATH", help=MODEL_HELP)
    mode.add_argument("--threads", type=int, default=threads, help="CPU threads for inference (default: %(default)s)")
    mode.add_argument("--refine", action=argparse.BooleanOptionalAction, default=refine, help="snap the mask to the "
                      f"image's edges with a guided filter (default: {'on' if refine else 'off'})")


def _add_effect_options(mode: argparse.ArgumentParser) -> None:
    """The effects' settings (portrait_sdk.effects), for the modes that apply one."""
    mode.add_argument("--color", type=_color, help="colour for hair-color / nails: #RRGGBB or R,G,B")
    mode.add_argument("--strength", type=_unit, help="blur amount / dye amount in [0, 1]")
    mode.add_argument("--gloss", type=_unit, help="nail polish gloss in [0, 1]")


def _add_preview(modes) -> None:
    from portrait_sdk.effects import EFFECTS
    from portrait_sdk.preview import app

    defaults = app.PreviewOptions()
    keys = "\n".join(f"  {key}  {text}" for key, text in app.KEYS.items())
    preview = modes.add_parser(
        "preview", help="live effects on a webcam, a video or a photo, in a window or headless into a file",
        description=app.__doc__.replace("``", ""), formatter_class=argparse.RawTextHelpFormatter,
        epilog=f"keys in the window:\n{keys}\n\nexamples:\n  portrait-sdk preview --webcam\n"
               "  portrait-sdk preview --video clip.mp4 --effect replace --background beach.jpg\n"
               "  portrait-sdk preview --image me.jpg --headless --output blurred.png")
    source = preview.add_mutually_exclusive_group(required=True)
    source.add_argument("--webcam", action="store_true", help="the default camera (as --camera 0)")
    # no default: argparse takes "--camera 0" for no source at all when 0 is the default
    source.add_argument("--camera", type=int, metavar="N", help="a camera by index")
    source.add_argument("--video", type=Path, metavar="FILE", help="a video file")
    source.add_argument("--image", type=Path, metavar="FILE", help="a photo")
    _add_model_options(preview, defaults.threads, defaults.refine)
    preview.add_argument("--effect", choices=list(EFFECTS), default=defaults.effect, help="default: %(default)s")
    preview.add_argument("--background", type=Path, action="append", default=[], metavar="FILE|DIR",
                         help="background image(s) for the replace effect; repeat, or name a folder")
    _add_effect_options(preview)
    preview.add_argument("--smoothing", choices=("uncertainty", "ema", "none"), default=defaults.smoothing,
                         help="temporal smoothing of video masks (default: %(default)s)")
    preview.add_argument("--headless", action="store_true", help="no window: write --output instead")
    preview.add_argument("--output", type=Path, metavar="FILE",
                         help="with --headless: .mp4 / .avi (every frame) or .png / .jpg (the last frame)")
    preview.add_argument("--frames", type=int, default=defaults.frames, metavar="N",
                         help="with --headless: stop after N frames")
    preview.add_argument("--snapshot-dir", type=Path, default=defaults.snapshot_dir, metavar="DIR",
                         help="where the s key saves snapshots (default: the current folder)")
    preview.set_defaults(func=cmd_preview)


def _add_predict(modes) -> None:
    from portrait_sdk import predict

    defaults = predict.PredictOptions()
    mode = modes.add_parser("predict", help="a mask, matte or effect of an image or of every image of a folder",
                            description=predict.__doc__.replace("``", ""),
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="exit code 1 when an image could not be read (it is named and skipped), 2 when "
                                   "nothing could be done")
    mode.add_argument("input", type=Path, help="an image, or a folder of images (not its subfolders)")
    mode.add_argument("--output", type=Path, default=defaults.output, metavar="DIR",
                      help="folder for the <image stem>.png files (default: %(default)s)")
    mode.add_argument("--effect", choices=predict.OUTPUTS, default=defaults.effect,
                      help="mask: binary PNG (0 / 255); matte: the soft alpha; the others as the preview's "
                           "(default: %(default)s)")
    mode.add_argument("--threshold", type=_unit, default=defaults.threshold,
                      help="mask: foreground from this probability (default: %(default)s)")
    _add_model_options(mode, defaults.threads, defaults.refine)
    mode.add_argument("--background", type=Path, metavar="FILE",
                      help="background image for the replace effect (default: a built-in gradient)")
    _add_effect_options(mode)
    mode.add_argument("--quiet", action="store_true", help="no progress line")
    mode.set_defaults(func=cmd_predict)


def _add_serve(modes) -> None:
    # No defaults here: ServeConfig's and UploadLimits' apply (importing them, i.e. FastAPI, would slow every mode).
    serve = modes.add_parser("serve", help="HTTP API (masks, mattes, effects, stats) and the browser demo",
                             description="Masks, mattes, effects and stats over HTTP (API docs at /docs), and the "
                                         "browser demo at /, for the models of one folder (portrait_sdk.serve).")
    serve.add_argument("--models", type=Path, metavar="DIR", help="folder of <name>.tflite files with their "
                       "<name>.json cards (default: the packaged models)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    serve.add_argument("--max-upload-bytes", type=int, help="largest request body accepted (default: 10 MiB)")
    serve.add_argument("--max-pixels", type=int,
                       help="largest image accepted, width x height (default: 4096 x 4096)")
    serve.add_argument("--body-timeout", type=float, metavar="SECONDS",
                       help="longest time a request body may take to arrive, else 408 (default: 60)")
    serve.add_argument("--pool-size", type=int,
                       help="interpreters per model, i.e. its requests in parallel (default: 2)")
    serve.add_argument("--threads", type=int, help="LiteRT threads per interpreter (default: 2)")
    serve.add_argument("--tasks-vision", type=Path, metavar="DIR",
                       help="the @mediapipe/tasks-vision npm package the demo page loads (default: the checkout's "
                            "web/node_modules/@mediapipe/tasks-vision)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portrait-sdk", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")

    models = modes.add_parser("models", help="list the model zoo with params and MACs")
    models.add_argument("--task", choices=("portrait", "matting", "hair", "nails"), help="only this task")
    models.add_argument("--measure", action="store_true", help="build every registered architecture and write the "
                        "table again (the train extra; after changing the zoo)")
    models.set_defaults(func=cmd_models)

    evaluate = modes.add_parser("evaluate", help="score .tflite files on a labelled folder at full resolution")
    evaluate.add_argument("models", nargs="+", type=Path, help=".tflite files (with a card or metadata)")
    evaluate.add_argument("--data", required=True, help="folder (images/ + masks/ or alpha/), absolute or under "
                          "the data root, e.g. portrait/val")
    evaluate.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                          help="keep samples whose index.csv column matches, e.g. label_source=teacher")
    evaluate.add_argument("--threads", type=int, default=2)
    evaluate.add_argument("--passes", type=int, default=1,
                          help="runs per image of a model that takes the previous mask, each fed the last mask; "
                               "the last is scored (default: 1, a zero prior)")
    evaluate.add_argument("--output", type=Path, help="also write the report as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    train = modes.add_parser("train", help="train a model from a recipe (training/<model>.toml)")
    train.add_argument("recipe", type=Path, help="recipe TOML file")
    train.add_argument("--output", type=Path, help="run folder (default: runs/<recipe name>)")
    train.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    train.add_argument("--reschedule", action="store_true",
                       help="with --resume: follow the recipe's learning-rate settings from here on (by default a "
                            "resumed run keeps the schedule it started with)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    qat = modes.add_parser("qat", help="quantization-aware fine-tuning of a trained float model, as its recipe's "
                                       "[qat] table says (portrait-sdk qat training/<model>.toml)")
    qat.add_argument("recipe", type=Path, help="the float model's recipe TOML file (its data, objective and [qat])")
    qat.add_argument("--weights", type=Path, help="trained float weights (.keras) instead of [qat] weights")
    qat.add_argument("--epochs", type=int, help="fine-tuning epochs instead of [qat] epochs (default 5)")
    qat.add_argument("--learning-rate", type=float,
                     help="constant learning rate instead of [qat] learning_rate (default 1e-5)")
    qat.add_argument("--output", type=Path, help="run folder (default: runs/<recipe name>_qat)")
    qat.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    qat.add_argument("--quiet", action="store_true", help="no progress bar")
    qat.set_defaults(func=cmd_qat)

    from portrait_sdk.gpu_check import TOLERANCE_HELP  # numpy only

    gpu = modes.add_parser("gpu-check", help="prove .tflite files run whole on LiteRT's GPU accelerator, as on the CPU")
    gpu.add_argument("models", type=Path, nargs="+", help=".tflite files")
    gpu.add_argument("--atol", type=float, help=TOLERANCE_HELP)
    gpu.set_defaults(func=cmd_gpu_check)

    export = modes.add_parser("export", help="export trained weights to .tflite files with model cards")
    export.add_argument("weights", type=Path, help=".keras file saved by `portrait-sdk train` (or a QAT model)")
    export.add_argument("--precision", nargs="+", default=["float16"], metavar="P",
                        help=f"one or more of {', '.join(PRECISIONS)} (default: float16)")
    export.add_argument("--representative", type=Path, metavar="DIR", help="calibration images (int8)")
    export.add_argument("--output", type=Path, default=Path("export"), help="folder (default: export/)")
    export.add_argument("--name", help="file stem before the precision suffix (default: the architecture)")
    export.add_argument("--model", help="architecture name, when the model's name attribute is not one")
    export.add_argument("--description", help="card description (default: the architecture's)")
    export.add_argument("--version", help="card version (default: 0.1.0)")
    export.add_argument("--license", help="licence text for the card and metadata")
    export.add_argument("--training-data", help="what the model was trained on, for the card")
    export.add_argument("--metrics", type=Path, metavar="JSON", help="JSON file of metrics for the card")
    export.add_argument("--latency-runs", type=int, default=50, help="runs of the latency median (default: 50)")
    export.set_defaults(func=cmd_export)

    release = modes.add_parser("release", help="rebuild the released models (fp16 + best int8, cards, report) "
                                               "from the committed weights")
    release.add_argument("manifest", type=Path, nargs="?", default=Path("export/release.toml"),
                         help="release manifest (default: export/release.toml)")
    release.add_argument("--only", nargs="+", metavar="NAME", help="rebuild only these models")
    release.add_argument("--threads", type=int, default=2, help="inference threads while scoring (default: 2)")
    release.add_argument("--latency-runs", type=int, default=200,
                         help="rounds of timing all of a model's files and baselines together, for the cards and "
                              "the report (default: 200)")
    release.set_defaults(func=cmd_release)

    from portrait_sdk.effects import EFFECTS

    bench = modes.add_parser("bench", help="FPS, per-stage ms and mask flicker of the preview pipeline")
    _add_model_options(bench, threads=2, refine=True)
    bench.add_argument("--video", type=Path, help="default: samples/portrait_clip.mp4 under the data root")
    bench.add_argument("--effect", default="blur", help=f"{', '.join(EFFECTS)} (default: %(default)s)")
    bench.add_argument("--frames", type=int, default=200, help="frames to time (default: 200)")
    bench.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    bench.add_argument("--flicker-frames", type=int, default=60, help="static-scene frames (default: 60)")
    bench.add_argument("--noise", type=float, default=2.0, help="static-scene noise sigma, 0..255 (default: 2)")
    bench.add_argument("--output", type=Path, metavar="DIR", help="write bench.json and bench.png here")
    bench.set_defaults(func=cmd_bench)

    _add_preview(modes)
    _add_predict(modes)
    _add_serve(modes)

    pseudo = modes.add_parser("pseudolabel", help="label unlabeled photos with a teacher model: a soft-alpha "
                                                  "dataset folder (images/ + alpha/ + index.csv) to train on")
    pseudo.add_argument("teacher", type=Path, help=".tflite (with a card or metadata) or .keras file from the trainer")
    pseudo.add_argument("images", type=Path, help="folder of photos (not written to)")
    pseudo.add_argument("output", type=Path, help="dataset folder to write; a rerun resumes it")
    pseudo.add_argument("--temperature", type=float, default=1.0,
                        help="p' = sigmoid(logit(p) / T): > 1 softens, < 1 sharpens (default: 1)")
    pseudo.add_argument("--min-confidence", type=float, default=0.0,
                        help="drop images whose mean |2p - 1| is below this (default: 0, keep all)")
    pseudo.add_argument("--passes", type=int, default=1,
                        help="runs per image of a model that takes the previous mask (default: 1)")
    pseudo.add_argument("--limit", type=int, help="only the first N images (by name)")
    pseudo.add_argument("--threads", type=int, default=2)
    pseudo.add_argument("--quiet", action="store_true", help="no progress")
    pseudo.set_defaults(func=cmd_pseudolabel)

    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    for mode in modes.choices.values():  # also after the mode: portrait-sdk models --verbose
        mode.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet.configure(args.verbose)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        return _error(args.mode, error)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAIN_MODULES:
            raise
        print(f"portrait-sdk {args.mode}: error: needs the training side ({error.name} is not installed): run it as "
              f"`uv run --extra train portrait-sdk {args.mode} ...` (or pip install 'portrait-sdk[train]')",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
