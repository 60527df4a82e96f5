"""Debugging: run half of the loop, record or replay rollouts, deterministic kernels, early exit."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Debugging")
    group.add_argument("--debug-rollout-only", action="store_true",
                       help="Only start the rollout engines: generate and log, never train or update weights.")
    group.add_argument("--debug-train-only", action="store_true",
                       help="Only start the trainer: no engines, no router (needs --load-debug-rollout-data or a "
                            "data source that needs no engine).")
    group.add_argument("--save-debug-rollout-data", default=None, metavar="PATH",
                       help="Save every rollout to this path template, e.g. 'dump/rollout_{rollout_id}.pt'.")
    group.add_argument("--load-debug-rollout-data", default=None, metavar="PATH",
                       help="Replay rollouts saved with --save-debug-rollout-data instead of generating "
                            "(implies --debug-train-only).")
    group.add_argument("--deterministic-mode", action="store_true",
                       help="Deterministic kernels and seeded everything (slower).")
    group.add_argument("--debug-exit-after-rollout", type=positive_int, default=None, metavar="N",
                       help="Stop after N rollouts (whatever --num-rollout says).")
