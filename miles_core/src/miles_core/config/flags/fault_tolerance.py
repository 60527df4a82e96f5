"""Fault tolerance: engine health checks, and restarting dead engines before the next weight update."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Fault tolerance")
    group.add_argument("--use-fault-tolerance", action="store_true",
                       help="Health-check the rollout engines and restart dead ones.")
    group.add_argument("--rollout-health-check-first-wait", type=non_negative_int, default=0, metavar="SECONDS",
                       help="Grace period after an engine (re)starts before heartbeats begin.")
    group.add_argument("--rollout-health-check-interval", type=positive_int, default=30, metavar="SECONDS",
                       help="Seconds between heartbeats.")
    group.add_argument("--rollout-health-check-timeout", type=positive_int, default=30, metavar="SECONDS",
                       help="A heartbeat slower than this marks the engine dead.")
