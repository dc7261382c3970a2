"""``portrait-sdk MODE ...``: one command grammar for the whole pipeline (also ``python -m portrait_sdk``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def zoo_table(task: str | None = None) -> list[dict]:
    """One row per registered architecture at its default input size (builds each model to count it)."""
    from portrait_sdk.models import build_model, get_spec, list_models
    from portrait_sdk.models.complexity import count_macs, count_params

    rows = []
    for name in list_models(task):
        spec = get_spec(name)
        model = build_model(name)
        rows.append({
            "name": name, "task": spec.task,
            "input": "x".join(map(str, (*spec.default_input_size, spec.input_channels[0]))),
            "params": count_params(model), "macs": count_macs(model),
            "reference": spec.reference, "output": spec.output,
        })
    return rows


def cmd_models(args) -> int:
    rows = zoo_table(args.task)
    header = ("name", "task", "input", "params", "MACs", "official (params / MACs)", "output")
    table = [header]
    for r in rows:
        ref = r["reference"]
        official = "-" if ref is None else (
            f"{_format_count(ref.params)} / {_format_count(ref.macs)} @{ref.input_size[0]}x{ref.input_size[1]}")
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
    best = Trainer(recipe, run_dir, progress=not args.quiet).fit(resume=args.resume)
    print(f"best epoch {best.get('epoch')}: {recipe.train.metric} = {best.get('val_' + recipe.train.metric)}; "
          f"weights in {Path(run_dir) / 'best.keras'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portrait-sdk", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")

    models = modes.add_parser("models", help="list the model zoo with params and MACs")
    models.add_argument("--task", choices=("portrait", "matting", "hair", "nails"), help="only this task")
    models.set_defaults(func=cmd_models)

    train = modes.add_parser("train", help="train a model from a recipe (training/<model>.toml)")
    train.add_argument("recipe", type=Path, help="recipe TOML file")
    train.add_argument("--output", type=Path, help="run folder (default: runs/<recipe name>)")
    train.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"portrait-sdk {args.mode}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
