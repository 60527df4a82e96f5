"""Async / partial rollout: overlapping generation with training, and resuming aborted generations."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Async / partial rollout")
    group.add_argument("--async", dest="async_mode", action="store_true",
                       help="Overlap generation of rollout k+1 with training on rollout k (Miles's train_async.py).")
    group.add_argument("--partial-rollout", action="store_true",
                       help="Put groups aborted at the end of a rollout back into the buffer and resume them next "
                            "rollout.")
    group.add_argument("--max-weight-staleness", type=non_negative_int, default=1, metavar="N",
                       help="With --async: the most weight versions a trained sample may lag behind the actor.")
