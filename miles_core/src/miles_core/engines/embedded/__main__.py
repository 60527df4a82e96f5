"""``python -m miles_core.engines.embedded --hf-checkpoint DIR``: run one embedded engine server."""

import sys

from miles_core.engines.embedded.cli import main

if __name__ == "__main__":
    sys.exit(main())
