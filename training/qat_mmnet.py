"""Quantization-aware fine-tuning of MMNet: training/mmnet.toml's data and objective, from
training/weights/mmnet.keras, 5 epochs at a constant learning rate of 1e-5.

    uv run --extra train python training/qat_mmnet.py [--output DIR] [--resume] [--quiet] [--epochs N] [--learning-rate LR]
"""

import sys
from pathlib import Path

from portrait_sdk.cli import qat_script

HERE = Path(__file__).resolve().parent
MODEL = "mmnet"

if __name__ == "__main__":
    sys.exit(qat_script(HERE / f"{MODEL}.toml", HERE / "weights" / f"{MODEL}.keras", epochs=5, learning_rate=1e-5))
