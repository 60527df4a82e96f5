"""Debug modes: which half of the loop runs (anatomy §13)."""

from __future__ import annotations

import argparse

from miles_core.config.errors import ConfigError
from miles_core.config.notices import warn


def check_debug_modes(args: argparse.Namespace, passed: set[str]) -> None:
    if args.load_debug_rollout_data:
        if args.debug_rollout_only:
            raise ConfigError(
                "--load-debug-rollout-data replays saved rollouts into the trainer (it implies --debug-train-only), "
                "so it cannot be combined with --debug-rollout-only; drop one of them"
            )
        args.debug_train_only = True
    if args.debug_rollout_only and args.debug_train_only:
        raise ConfigError("--debug-rollout-only and --debug-train-only are mutually exclusive; pass one of them")
    if args.colocate and (args.debug_rollout_only or args.debug_train_only):
        mode = "--debug-rollout-only" if args.debug_rollout_only else "--debug-train-only"
        warn(f"--colocate is ignored with {mode} (only one side of the loop runs)")
        args.colocate = False
