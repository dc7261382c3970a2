"""``python -m portrait_sdk.preview ...``: the same command as ``portrait-sdk preview ...``."""

import sys

from portrait_sdk.cli import main

if __name__ == "__main__":
    sys.exit(main(["preview", *sys.argv[1:]]))
