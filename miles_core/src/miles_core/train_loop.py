"""The training loop entry point that ``miles train`` hands over to after validation.

The loop itself lives in :mod:`miles_core.ray.loop` (Ray orchestration of the rollout manager, the
engines and the train ranks); this module keeps the import of Ray and torch out of ``miles --help``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["run"]


def run(args: argparse.Namespace, pm: Any) -> int:
    """Run ``miles train`` with validated ``args`` and the plugin manager ``pm``; returns the exit status."""
    from miles_core.ray.loop import run as run_loop

    return run_loop(args, pm)
