"""Validation of the parsed ``miles train`` flags, in the order that lets later checks use derived values.

1. the four-knob invariant (:mod:`miles_core.config.batch_knobs`);
2. the core's cross-flag checks (:mod:`miles_core.config.checks`), which also fill derived defaults
   (``--eps-clip-high``, ``--over-sampling-batch-size``, offload under ``--colocate``, eval sampling, …);

The plugins' own checks (``miles_validate_args``) and the registry look-ups come after, in
:func:`miles_core.config.parse.parse_and_validate`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from miles_core.config.batch_knobs import apply_batch_knobs
from miles_core.config.checks.algorithm import check_algorithm
from miles_core.config.checks.cluster import check_colocate_and_offload, check_parallelism
from miles_core.config.checks.data import (
    check_eval,
    check_lengths,
    check_model_paths,
    check_num_rollout,
    check_prompt_data,
    uses_global_dataset,
)
from miles_core.config.checks.modes import check_debug_modes
from miles_core.config.checks.run import check_rollout, check_run_outputs
from miles_core.config.checks.sglang import check_sglang
from miles_core.config.errors import ConfigError

__all__ = ["CORE_CHECKS", "validate_core_args"]

Check = Callable[[argparse.Namespace, set[str]], None]

#: The core checks in the order they run (each may rely on values the previous ones derived).
CORE_CHECKS: tuple[Check, ...] = (
    check_debug_modes,
    check_colocate_and_offload,
    check_parallelism,
    check_model_paths,
    check_prompt_data,
    check_eval,
    check_lengths,
    check_num_rollout,
    check_algorithm,
    check_rollout,
    check_run_outputs,
    check_sglang,
)


def check_required(args: argparse.Namespace, passed: set[str]) -> None:
    """Several required flags missing at once (a bare ``miles train``) are reported together."""
    missing = []
    if not args.hf_checkpoint:
        missing.append("--hf-checkpoint PATH (the HF model directory)")
    if args.prompt_data is None and uses_global_dataset(args):
        missing.append("--prompt-data FILE (a JSONL file of prompts)")
    if args.rollout_batch_size is None and args.global_batch_size is None:
        missing.append("--rollout-batch-size N (prompts per rollout) or --global-batch-size N")
    if len(missing) > 1:
        raise ConfigError("missing required flags: " + "; ".join(missing)
                          + ". See 'miles train --help', or start from examples/demo.args")


def validate_core_args(args: argparse.Namespace, passed: set[str]) -> argparse.Namespace:
    """Run the four-knob resolution and every core check on ``args`` (in place); ``passed`` = explicit dests."""
    check_required(args, passed)
    apply_batch_knobs(args, passed)
    for check in CORE_CHECKS:
        check(args, passed)
    return args
