"""``portrait-sdk MODE ...``: one command grammar for the whole pipeline (also ``python -m portrait_sdk``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portrait_sdk import quiet

# The train extra's modules (pyproject.toml): without them a training command says how to install them.
TRAIN_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "mediapipe", "matplotlib", "tensorboard")
VERBOSE_HELP = "show the native libraries' log lines (TensorFlow, OpenCV, LiteRT), quiet by default"


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
              + ("" if model["int8_within_limit"] else "  OVER THE LIMIT"))
    print(f"report: {Path(args.manifest).parent / REPORT_MD}")
    return 0


def cmd_bench(args) -> int:
    from portrait_sdk import bench  # no TensorFlow

    return bench.cmd_bench(args)


def cmd_gpu_check(args) -> int:
    from portrait_sdk.gpu_check import GpuUnavailableError, check_gpu

    passed = True
    for path in args.models:
        try:
            report = check_gpu(path, atol=args.atol)
        except GpuUnavailableError as error:
            print(f"portrait-sdk gpu-check: error: {error}", file=sys.stderr)
            return 2
        print(report.summary(), flush=True)
        passed = passed and report.passed
    return 0 if passed else 1


def cmd_qat(args) -> int:
    from portrait_sdk.recipe import load_recipe

    recipe = load_recipe(args.recipe)  # checked before TensorFlow is imported
    from portrait_sdk.quantize import REPORT_FILE, run_qat

    run_dir = Path(args.output or Path("runs") / f"{recipe.name}_qat")
    report = run_qat(recipe.path, args.weights, run_dir, epochs=args.epochs, learning_rate=args.learning_rate,
                     resume=args.resume, progress=not args.quiet)
    metric = report["metric"]
    print(f"{recipe.model.name} {metric}: float {report['float'][metric]:.4f}, QAT (simulated int8) "
          f"{report['qat'][metric]:.4f} at epoch {report['qat_epoch']} ({report['change']:+.4f}); "
          f"report in {run_dir / REPORT_FILE}, model in {run_dir / report['qat_model']}")
    return 0


def qat_script(recipe: Path, weights: Path, epochs: int, learning_rate: float, argv: list[str] | None = None) -> int:
    """``portrait-sdk qat`` with one model's settings, for ``training/qat_<model>.py``; ``argv`` (default: the
    script's own arguments) may add --output, --resume, --quiet or override the settings."""
    return main(["qat", str(recipe), "--weights", str(weights), "--epochs", str(epochs),
                 "--learning-rate", str(learning_rate), *(sys.argv[1:] if argv is None else argv)])


def cmd_evaluate(args) -> int:
    from portrait_sdk.evaluate import evaluate, format_table, parse_filters, write_report

    report = evaluate(args.models, args.data, parse_filters(args.filter), threads=args.threads, passes=args.passes)
    if args.output:  # first: the scores are kept whatever printing them does
        write_report(report, args.output)
    print(format_table(report))
    return 0


def cmd_pseudolabel(args) -> int:
    from portrait_sdk.pseudolabel import PseudolabelOptions, pseudolabel  # TensorFlow only for a .keras teacher

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done % 25 == 0 or done == total):
            print(f"\rpseudolabel {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    options = PseudolabelOptions(temperature=args.temperature, min_confidence=args.min_confidence,
                                 passes=args.passes, limit=args.limit, threads=args.threads)
    report = pseudolabel(args.teacher, args.images, args.output, options, progress=progress)
    for problem in report.bad:
        print(f"skipped {problem}", file=sys.stderr)
    print(report.summary())
    print(f"contact sheet: {report.out_dir / 'contact_sheet.png'}")
    return 0


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

    qat = modes.add_parser("qat", help="quantization-aware fine-tuning of a trained float model "
                                       "(training/qat_<model>.py)")
    qat.add_argument("recipe", type=Path, help="the float model's recipe TOML file (its data and objective)")
    qat.add_argument("--weights", type=Path, required=True, help="trained float weights (.keras)")
    qat.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default 5)")
    qat.add_argument("--learning-rate", type=float, default=1e-5, help="constant learning rate (default 1e-5)")
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
                        help="float32, float16, dynamic_int8, int8 and/or qat_int8 (default: float16)")
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
    release.add_argument("--latency-runs", type=int, default=50, help="runs of the latency median (default: 50)")
    release.set_defaults(func=cmd_release)

    bench = modes.add_parser("bench", help="FPS, per-stage ms and mask flicker of the preview pipeline")
    bench.add_argument("--model", metavar="NAME|PATH", help="packaged model name, released file name in export/ "
                       "(e.g. mmnet_int8) or .tflite file with its card (default: the packaged model for the effect)")
    bench.add_argument("--video", type=Path, help="default: samples/portrait_clip.mp4 under the data root")
    bench.add_argument("--effect", default="blur", help="blur, replace, matte, hair-color or nails (default: blur)")
    bench.add_argument("--frames", type=int, default=200, help="frames to time (default: 200)")
    bench.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    bench.add_argument("--threads", type=int, default=2, help="inference threads (default: 2)")
    bench.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                       help="guided-filter refinement, as the preview (default: on)")
    bench.add_argument("--flicker-frames", type=int, default=60, help="static-scene frames (default: 60)")
    bench.add_argument("--noise", type=float, default=2.0, help="static-scene noise sigma, 0..255 (default: 2)")
    bench.add_argument("--output", type=Path, metavar="DIR", help="write bench.json and bench.png here")
    bench.set_defaults(func=cmd_bench)

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
        print(f"portrait-sdk {args.mode}: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAIN_MODULES:
            raise
        print(f"portrait-sdk {args.mode}: error: needs the training side ({error.name} is not installed): run it as "
              f"`uv run --extra train portrait-sdk {args.mode} ...` (or pip install 'portrait-sdk[train]')",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
