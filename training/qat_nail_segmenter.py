"""Quantization-aware fine-tuning of the nail segmenter: training/nail_segmenter.toml's data and objective, from
training/weights/nail_segmenter.keras, 5 epochs at a constant learning rate of 1e-5.

    uv run --extra train python training/qat_nail_segmenter.py [--output DIR] [--resume] [--quiet] [--epochs N] [--learning-rate LR]
"""

import sys
from pathlib import Path

from portrait_sdk.cli import qat_script

HERE = Path(__file__).resolve().parent
MODEL = "nail_segmenter"

if __name__ == "__main__":
    sys.exit(qat_script(HERE / f"{MODEL}.toml", HERE / "weights" / f"{MODEL}.keras", epochs=5, learning_rate=1e-5))
