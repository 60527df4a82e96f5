"""``miles train``: validate every flag, print the resolved plan, then hand over to the training loop."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from miles_core.config.arguments import TRAIN_DESCRIPTION, TRAIN_USAGE, build_train_parser

__all__ = ["add_parser", "run_train"]


def add_parser(subparsers: Any, pm: Any) -> argparse.ArgumentParser:
    """Add ``train`` with every core and plugin flag (so ``miles train --help`` shows them all)."""
    parser = subparsers.add_parser(
        "train", help="Train a policy with RL (GRPO, GSPO, PPO, REINFORCE++, on-policy distillation)",
        description=TRAIN_DESCRIPTION, usage=TRAIN_USAGE,
    )
    return build_train_parser(pm, parser=parser)


def run_train(argv: list[str], pm: Any, parser: argparse.ArgumentParser | None = None) -> int:
    """Parse and validate ``argv`` (the words after ``miles train``), print the plan, run the loop."""
    from miles_core.cli.plan import format_plan
    from miles_core.config.parse import parse_and_validate

    args, selection = parse_and_validate(argv, pm, parser=parser, return_selection=True)
    print(format_plan(args, selection, pm), flush=True)
    if args.dry_run:
        print("dry run: nothing started.", flush=True)
        return 0
    sys.stdout.flush()
    from miles_core import train_loop

    return int(train_loop.run(args, pm) or 0)
