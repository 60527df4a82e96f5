"""Run outputs: run directory, checkpoint cadence, over-sampling and the rollout's reward endpoint."""

from __future__ import annotations

import argparse
import time

from miles_core.config.errors import ConfigError


def check_run_outputs(args: argparse.Namespace, passed: set[str]) -> None:
    if args.run_dir is None:
        args.run_dir = f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
    if args.save_interval is not None and not args.save:
        raise ConfigError(f"--save-interval {args.save_interval} needs --save DIR (where checkpoints are written)")
    if args.custom_megatron_post_save_hook_path and not args.save:
        raise ConfigError("--custom-megatron-post-save-hook-path runs after each save and needs --save DIR")
    if args.save_hf and not args.save:
        raise ConfigError("--save-hf exports an HF checkpoint at each save and needs --save DIR")


def check_rollout(args: argparse.Namespace, passed: set[str]) -> None:
    if args.over_sampling_batch_size is None:
        args.over_sampling_batch_size = args.rollout_batch_size
    elif args.over_sampling_batch_size < args.rollout_batch_size:
        raise ConfigError(
            f"--over-sampling-batch-size {args.over_sampling_batch_size} must be at least --rollout-batch-size "
            f"{args.rollout_batch_size} (it is how many prompts are submitted to fill one rollout)"
        )
    if args.rm_type == "remote_rm" and not args.rm_url:
        raise ConfigError("--rm-type remote_rm needs --rm-url URL (the reward server's endpoint)")
    if args.rm_url and args.rm_type not in (None, "remote_rm"):
        raise ConfigError(f"--rm-url is only used by --rm-type remote_rm, but --rm-type is {args.rm_type!r}")
