"""Logging: where metrics go (stdout and metrics.jsonl always; wandb, tensorboard, plugins on request)."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Logging")
    group.add_argument("--logger", action="append", default=[], metavar="NAME",
                       help="Enable a logger plugin (repeatable). stdout and jsonl (<run-dir>/metrics.jsonl) are "
                            "always on; wandb and tensorboard also turn on with their own flags.")
    group.add_argument("--run-dir", default=None, metavar="DIR",
                       help="Run directory: metrics.jsonl, plots, and checkpoints when --save is unset. "
                            "Unset: runs/<timestamp>.")
    group.add_argument("--run-name", default=None, help="Run name shown by wandb. Unset: the run directory's name.")
    group.add_argument("--use-wandb", action="store_true", help="Log to Weights & Biases.")
    group.add_argument("--wandb-project", default=None, help="wandb project name.")
    group.add_argument("--wandb-group", default=None, help="wandb group name.")
    group.add_argument("--wandb-dir", default=None, metavar="DIR", help="wandb's local files. Unset: the run directory.")
    group.add_argument("--wandb-mode", choices=("online", "offline"), default=None,
                       help="wandb mode. Unset: $WANDB_MODE, else online.")
    group.add_argument("--log-interval", type=positive_int, default=1, metavar="N", help="Stdout log cadence (rollouts).")
    group.add_argument("--log-passrate", action="store_true",
                       help="Log pass@k for k = 1, 2, 4, … ≤ --n-samples-per-prompt (reward 1 means correct).")
    group.add_argument("--custom-rollout-log-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: f(rollout_id, args, samples, extra_metrics, rollout_time) -> bool; "
                            "True suppresses the default rollout logging.")
    group.add_argument("--custom-eval-rollout-log-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: f(rollout_id, args, data, extra_metrics) -> bool for eval logging.")
