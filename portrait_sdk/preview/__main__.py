import sys

from portrait_sdk.preview.app import main

sys.exit(main())
