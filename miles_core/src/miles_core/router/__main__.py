"""``python -m miles_core.router``: run the router."""

import sys

from miles_core.router.cli import main

if __name__ == "__main__":
    sys.exit(main())
