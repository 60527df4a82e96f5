"""Optimizer: learning rate and its schedule, weight decay, Adam moments, gradient clipping.

The Megatron-inherited flags keep Megatron's names and Miles's defaults (``--lr 1e-6``, ``--clip-grad 1.0``).
"""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_float, non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Optimizer")
    group.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="Optimizer (adam is AdamW).")
    group.add_argument("--lr", type=non_negative_float, default=1e-6,
                       help="Learning rate. Post-training is sensitive to large updates; recipes stay near 1e-6.")
    group.add_argument("--lr-decay-style", choices=("constant", "linear", "cosine"), default="constant",
                       help="Learning-rate schedule after warm-up.")
    group.add_argument("--lr-warmup-iters", type=non_negative_int, default=0, metavar="N",
                       help="Linear warm-up steps (optimizer steps).")
    group.add_argument("--lr-decay-iters", type=positive_int, default=None, metavar="N",
                       help="Steps over which linear/cosine decay runs. Unset: the whole run "
                            "(num_rollout × num_steps_per_rollout).")
    group.add_argument("--min-lr", type=non_negative_float, default=0.0, help="Lower bound of the decayed learning rate.")
    group.add_argument("--weight-decay", type=non_negative_float, default=0.1, help="Decoupled (L2) weight decay.")
    group.add_argument("--adam-beta1", type=non_negative_float, default=0.9, help="Adam first-moment decay.")
    group.add_argument("--adam-beta2", type=non_negative_float, default=0.98, help="Adam second-moment decay.")
    group.add_argument("--adam-eps", type=non_negative_float, default=1e-8, help="Adam epsilon.")
    group.add_argument("--sgd-momentum", type=non_negative_float, default=0.9, help="Momentum of --optimizer sgd.")
    group.add_argument("--clip-grad", type=non_negative_float, default=1.0,
                       help="Clip the global gradient norm to this value (0 disables).")
    group.add_argument("--optimizer-cpu-offload", action="store_true", help="Megatron CPU Adam.")
    group.add_argument("--overlap-cpu-optimizer-d2h-h2d", action="store_true",
                       help="Overlap the CPU optimizer's device/host copies with compute (megatron).")
    group.add_argument("--use-precision-aware-optimizer", action="store_true",
                       help="Megatron's precision-aware optimizer (low-precision optimizer states).")
