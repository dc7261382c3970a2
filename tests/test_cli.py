"""``portrait-sdk models`` prints the zoo from its committed table, without TensorFlow; ``--verbose`` anywhere; the
preview and the server are modes of the one command (``python -m portrait_sdk.preview`` / ``.serve`` too)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_environment import BLOCK_TENSORFLOW

from portrait_sdk.cli import build_parser, main
from portrait_sdk.zoo import ZOO_FILE, load_zoo, measure_zoo


def _table(text: str) -> list[dict[str, str]]:
    """The rows of a table printed by ``models``, by column name (the columns are where the dashes run)."""
    header, dashes, *rows = text.splitlines()
    spans = [match.span() for match in re.finditer(r"-+", dashes)]
    spans[-1] = (spans[-1][0], None)  # the last column's cells are not padded

    def cells(line: str) -> list[str]:
        return [line[start:end].strip() for start, end in spans]
    return [dict(zip(cells(header), cells(row))) for row in rows]


def test_models_table_lists_every_architecture(capsys):
    assert main(["models"]) == 0
    rows = {row["name"]: row for row in _table(capsys.readouterr().out)}
    assert {"portraitnet", "mmnet", "extremec3net", "sinet", "hair_segmenter", "nail_segmenter"} <= set(rows)
    portraitnet = rows["portraitnet"]
    assert portraitnet["input"] == "224x224x3" and portraitnet["params"] == "2.08M"  # measured, not the paper's
    assert portraitnet["official (params / MACs)"].startswith("2.08M / ")


def test_committed_zoo_table_is_the_registry_measured():
    """The table `models` prints is every registered architecture's params and MACs, counted afresh."""
    assert load_zoo() == measure_zoo(), (f"{ZOO_FILE} is out of date with the model registry: run "
                                         "`uv run --extra train portrait-sdk models --measure` and commit it")


def test_models_filtered_by_task(capsys):
    assert main(["models", "--task", "matting"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["mmnet"]


def test_models_needs_no_tensorflow_and_prints_nothing_else():
    code = BLOCK_TENSORFLOW + textwrap.dedent("""
        from portrait_sdk.cli import main
        sys.exit(main(["models"]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "hair_segmenter" in result.stdout, result.stderr
    assert result.stderr == ""


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "portrait_sdk", "models", "--task", "hair"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "hair_segmenter" in result.stdout


def test_verbose_before_or_after_the_mode():
    parser = build_parser()
    assert not parser.parse_args(["models"]).verbose
    assert parser.parse_args(["--verbose", "models"]).verbose
    assert parser.parse_args(["gpu-check", "x.tflite", "--verbose"]).verbose


@pytest.mark.parametrize("mode, options", [("preview", ("--webcam", "--headless", "--snapshot-dir")),
                                           ("serve", ("--models", "--max-upload-bytes", "--pool-size"))])
def test_preview_and_serve_are_modes_with_their_options(mode, options, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # one help width here and in the child, whatever the terminal
    with pytest.raises(SystemExit) as exit_code:
        main([mode, "--help"])
    assert exit_code.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: portrait-sdk {mode} ") and all(option in text for option in options)
    result = subprocess.run([sys.executable, "-m", f"portrait_sdk.{mode}", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout == text, result.stderr  # the same parser


def test_serve_options_reach_the_service_config_and_unset_ones_keep_its_defaults(monkeypatch):
    import uvicorn

    import portrait_sdk.serve as serve

    configs, runs = [], []
    monkeypatch.setattr(serve, "create_app", lambda config: configs.append(config) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append((app, options)))
    assert main(["serve"]) == 0
    assert main(["serve", "--models", "models", "--pool-size", "3", "--threads", "1", "--max-pixels", "100",
                 "--port", "9000"]) == 0
    assert configs[0] == serve.ServeConfig()
    assert configs[1] == dataclasses.replace(serve.ServeConfig(), models=Path("models"), pool_size=3, num_threads=1,
                                             limits=serve.UploadLimits(max_pixels=100))
    assert runs[1] == ("app", {"host": "127.0.0.1", "port": 9000, "log_level": "info"})
