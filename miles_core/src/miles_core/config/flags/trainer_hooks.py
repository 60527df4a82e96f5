"""Trainer hooks: Miles's ``--custom-megatron-*-path`` escape hatches.

Plugins get the same call points through the lifecycle hooks (``miles_before_log_prob``,
``miles_before_train_step``, ``miles_after_save``); these flags keep Miles launch scripts working and
apply to every train backend, not only megatron.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Trainer hooks", "Functions called on every train rank; plugins use the miles_before_*/miles_after_* hooks."
    )
    group.add_argument("--custom-megatron-init-path", default=None, metavar="PKG.MOD:FN",
                       help="f(args), called once when the trainer has initialised.")
    group.add_argument("--custom-megatron-before-log-prob-hook-path", default=None, metavar="PKG.MOD:FN",
                       help="f(args, model, store_prefix), before each forward-only log-prob pass.")
    group.add_argument("--custom-megatron-before-train-step-hook-path", default=None, metavar="PKG.MOD:FN",
                       help="f(args, rollout_id, step_id, model, optimizer, lr_scheduler), before each optimizer step.")
    group.add_argument("--custom-megatron-post-save-hook-path", default=None, metavar="PKG.MOD:FN",
                       help="f(args, rollout_id, checkpoint_dir, hf_checkpoint_dir), after each save (needs --save).")
