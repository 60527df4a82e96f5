"""The training loop entry point that ``miles train`` hands over to after validation.

The loop itself lives in :mod:`miles_core.ray.loop` (Ray orchestration of the rollout manager, the
engines and the train ranks); this module keeps the import of Ray and torch out of ``miles --help``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["run"]


def run(args: argparse.Namespace, pm: Any) -> int:
    """Run ``miles train`` with validated ``args`` and the plugin manager ``pm``; returns the exit status."""
    from miles_core.ray.loop import run as run_loop

    _show_loop_messages()
    return run_loop(args, pm)


def _show_loop_messages() -> None:
    """The loop's own messages (``miles.*`` loggers: start, resume, engine restarts) on stderr, INFO and up.

    Worker processes keep Python's default (warnings and errors), which Ray forwards to this terminal.
    """
    loop_logger = logging.getLogger("miles")
    if loop_logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    loop_logger.addHandler(handler)
    loop_logger.setLevel(logging.INFO)
    loop_logger.propagate = False
