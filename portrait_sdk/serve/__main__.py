"""``python -m portrait_sdk.serve ...``: the same command as ``portrait-sdk serve ...``."""

import sys

from portrait_sdk.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
