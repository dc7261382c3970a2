import sys

from portrait_sdk.cli import main

sys.exit(main())
