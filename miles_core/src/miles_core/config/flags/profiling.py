"""Profiling: the PyTorch profiler window, memory snapshots and TensorBoard traces."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_int

PROFILE_TARGETS = ("train_overall", "train_actor", "train_log_probs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Profiling")
    group.add_argument("--profile-target", nargs="+", choices=PROFILE_TARGETS, default=["train_overall"],
                       metavar="TARGET",
                       help=f"Which sub-loops to profile: {', '.join(PROFILE_TARGETS)}.")
    group.add_argument("--use-pytorch-profiler", action="store_true", help="FSDP only: enable the PyTorch profiler.")
    group.add_argument("--profile-step-start", type=non_negative_int, default=10, metavar="STEP",
                       help="FSDP only: first step to profile.")
    group.add_argument("--profile-step-end", type=non_negative_int, default=12, metavar="STEP",
                       help="FSDP only: last step to profile.")
    group.add_argument("--memory-snapshot-path", default="snapshot.pickle", metavar="PATH",
                       help="FSDP only: memory snapshot output.")
    group.add_argument("--tensorboard-dir", default=None, metavar="DIR",
                       help="FSDP only: TensorBoard output directory (also turns on the tensorboard logger).")
