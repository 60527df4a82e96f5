"""The training loop entry point that ``miles train`` hands over to after validation.

Placeholder until the loop lands: it says so and returns exit status 3, so scripts can tell a
validated-but-not-run command from a failure of the flags (status 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["run"]


def run(args: argparse.Namespace, pm: Any) -> int:
    """Run ``miles train`` with validated ``args`` and the plugin manager ``pm``; returns the exit status."""
    print("miles: training is not available yet in this build: the flags are valid and the plan above is what "
          "would run (use --dry-run to stop after the plan).", file=sys.stderr)
    return 3
