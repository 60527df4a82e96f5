"""MTP / speculative decoding: multi-token-prediction layers of the checkpoint and their training."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_float, non_negative_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MTP / speculative decoding")
    group.add_argument("--mtp-num-layers", type=non_negative_int, default=0, metavar="N",
                       help="Number of MTP layers in the checkpoint.")
    group.add_argument("--enable-mtp-training", action="store_true",
                       help="Train the MTP layers alongside the policy (needs --mtp-num-layers > 0).")
    group.add_argument("--mtp-loss-scaling-factor", type=non_negative_float, default=0.2, help="Weight of the MTP loss.")
