"""``portrait-sdk models`` prints the zoo from its committed table, without TensorFlow; ``--verbose`` anywhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from test_environment import BLOCK_TENSORFLOW

from portrait_sdk.cli import build_parser, main
from portrait_sdk.zoo import ZOO_FILE, load_zoo, measure_zoo


def test_models_table_lists_every_architecture(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("portraitnet", "mmnet", "extremec3net", "sinet", "hair_segmenter", "nail_segmenter"):
        assert name in out
    portraitnet_row = next(line for line in out.splitlines() if line.startswith("portraitnet"))
    assert "224x224x3" in portraitnet_row and "2.08M" in portraitnet_row


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
