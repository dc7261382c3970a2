"""``portrait-sdk models`` prints the zoo."""

from __future__ import annotations

import subprocess
import sys

from portrait_sdk.cli import main


def test_models_table_lists_every_architecture(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("portraitnet", "mmnet", "extremec3net", "sinet", "hair_segmenter", "nail_segmenter"):
        assert name in out
    portraitnet_row = next(line for line in out.splitlines() if line.startswith("portraitnet"))
    assert "224x224x3" in portraitnet_row and "2.08M" in portraitnet_row


def test_models_filtered_by_task(capsys):
    assert main(["models", "--task", "matting"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["mmnet"]


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "portrait_sdk", "models", "--task", "hair"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "hair_segmenter" in result.stdout
