"""The flags of miles-filters-dapo and their checks (DAPO overlong shaping, dynamic-sampling sanity)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["ARGUMENT_GROUP", "NONZERO_STD_NAMES", "add_arguments", "validate_args"]

ARGUMENT_GROUP = "miles-filters-dapo"
NONZERO_STD_NAMES = ("nonzero_std", "check_reward_nonzero_std")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        ARGUMENT_GROUP,
        "DAPO: soft overlong punishment of rewards (on when --overlong-buffer-len is set). The filters "
        "nonzero_std, mask_truncated and freshest_first are selected with --dynamic-sampling-filter, "
        "--rollout-sample-filter and --buffer-filter.")
    group.add_argument(
        "--overlong-buffer-len", type=int, default=None, metavar="TOKENS",
        help="L_cache of DAPO's soft overlong punishment: responses longer than --rollout-max-response-len "
             "minus this get a penalty growing linearly to -1 at --rollout-max-response-len (DAPO: 4096 of 20480). "
             "Unset: no shaping.")
    group.add_argument(
        "--overlong-penalty-factor", type=float, default=None, metavar="FACTOR",
        help="Scale of the overlong penalty (the penalty reaches -FACTOR at the cap). Default 1.0, as in DAPO.")
    group.add_argument(
        "--overlong-penalty-in-eval", action="store_true",
        help="Also shape eval rewards (by default eval reports the unshaped reward).")


def validate_args(args: Any) -> None:
    """Raise ``ValueError`` naming the flag: inconsistent overlong settings, or nonzero_std with one sample."""
    buffer_len = getattr(args, "overlong_buffer_len", None)
    factor = getattr(args, "overlong_penalty_factor", None)
    if buffer_len is None:
        if factor is not None:
            raise ValueError("--overlong-penalty-factor has no effect without --overlong-buffer-len L_CACHE")
        if getattr(args, "overlong_penalty_in_eval", False):
            raise ValueError("--overlong-penalty-in-eval has no effect without --overlong-buffer-len L_CACHE")
    else:
        _validate_overlong(args, buffer_len, factor)
    if getattr(args, "dynamic_sampling_filter", None) in NONZERO_STD_NAMES:
        n_samples = getattr(args, "n_samples_per_prompt", None)
        if n_samples is not None and int(n_samples) < 2:
            raise ValueError(
                f"--dynamic-sampling-filter {args.dynamic_sampling_filter} needs --n-samples-per-prompt of at least 2: "
                f"with {n_samples} sample per prompt every group has zero reward spread and would be dropped, "
                "so the rollout could never fill its batch")


def _validate_overlong(args: Any, buffer_len: int, factor: float | None) -> None:
    if buffer_len <= 0:
        raise ValueError(f"--overlong-buffer-len must be a positive number of tokens, got {buffer_len}")
    max_len = getattr(args, "rollout_max_response_len", None)
    if max_len is None:
        raise ValueError("--overlong-buffer-len needs --rollout-max-response-len (L_max of DAPO's overlong punishment)")
    if buffer_len >= max_len:
        raise ValueError(
            f"--overlong-buffer-len {buffer_len} must be smaller than --rollout-max-response-len {max_len}: the penalty "
            f"starts at L_max - L_cache = {max_len - buffer_len} tokens (DAPO used 4096 of 20480)")
    eval_max_len = getattr(args, "eval_max_response_len", None)
    if getattr(args, "overlong_penalty_in_eval", False) and eval_max_len is not None and buffer_len >= eval_max_len:
        raise ValueError(
            f"--overlong-buffer-len {buffer_len} must be smaller than --eval-max-response-len {eval_max_len} "
            "when --overlong-penalty-in-eval is set")
    if factor is not None and not factor > 0:
        raise ValueError(f"--overlong-penalty-factor must be positive, got {factor}; drop --overlong-buffer-len to "
                         "turn the shaping off")
