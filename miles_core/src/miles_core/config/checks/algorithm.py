"""RL algorithm: clipping, KL, importance sampling, loss type (anatomy §7)."""

from __future__ import annotations

import argparse

from miles_core.config.errors import ConfigError
from miles_core.config.notices import warn


def check_algorithm(args: argparse.Namespace, passed: set[str]) -> None:
    if args.eps_clip_high is None:
        args.eps_clip_high = args.eps_clip
    if args.eps_clip_c is not None and args.eps_clip_c <= 1.0:
        raise ConfigError(f"--eps-clip-c {args.eps_clip_c} must be greater than 1 (dual-clip lower bound)")
    if args.kl_coef != 0 and args.kl_loss_coef != 0:
        raise ConfigError(
            f"--kl-coef {args.kl_coef} (KL in the reward) and --kl-loss-coef {args.kl_loss_coef} (KL in the loss) "
            "cannot both be non-zero; keep one"
        )
    if args.kl_loss_coef != 0 and not args.use_kl_loss:
        warn(f"--kl-loss-coef {args.kl_loss_coef} has no effect without --use-kl-loss")
    if args.use_tis and args.use_rollout_logprobs:
        raise ConfigError(
            "--use-tis corrects the mismatch between the trainer's and the engines' log-probs, and "
            "--use-rollout-logprobs uses the engines' log-probs directly: they are mutually exclusive"
        )
    if args.tis_clip_low > args.tis_clip:
        raise ConfigError(f"--tis-clip-low {args.tis_clip_low} must not exceed --tis-clip {args.tis_clip}")
    if args.loss_type == "custom_loss" and not args.custom_loss_function_path:
        raise ConfigError("--loss-type custom_loss needs --custom-loss-function-path PKG.MOD:FN")
    if args.custom_loss_function_path and args.loss_type != "custom_loss":
        raise ConfigError("--custom-loss-function-path is only called with --loss-type custom_loss; add it")
    if args.n_samples_per_prompt == 1 and not args.disable_grpo_std_normalization:
        # A group of one has no spread: dividing by its std is undefined (anatomy §8.4).
        args.disable_grpo_std_normalization = True
    if args.enable_mtp_training and args.mtp_num_layers == 0:
        raise ConfigError("--enable-mtp-training needs --mtp-num-layers > 0 (the checkpoint's MTP layers)")
    if args.profile_step_end < args.profile_step_start:
        raise ConfigError(f"--profile-step-end {args.profile_step_end} is before --profile-step-start "
                          f"{args.profile_step_start}")
