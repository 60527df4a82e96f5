"""The ``--math-verify-*`` flags of miles-rm-math: how long and how wide answer checks may run."""

from __future__ import annotations

import argparse
from typing import Any

from miles_rm_math.verifier_pool import VerifierOptions, default_num_workers

__all__ = ["ARGUMENT_GROUP", "add_arguments", "validate_args", "verifier_options"]

ARGUMENT_GROUP = "miles-rm-math"
_DEFAULTS = VerifierOptions(num_workers=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags, in an argument group named after the package."""
    group = parser.add_argument_group(
        ARGUMENT_GROUP, "Math rewards (math, dapo, deepscaler, gemma_math, boxed_*): bounds on each math-verify check."
    )
    group.add_argument(
        "--math-verify-timeout", type=float, default=_DEFAULTS.timeout_s, metavar="SECONDS",
        help="Longest time one answer check may take; a check that runs over scores as a wrong answer and is "
             "logged and recorded in sample.metadata['math_verify'] (default: %(default)s).")
    group.add_argument(
        "--math-verify-workers", type=int, default=default_num_workers(), metavar="N",
        help="Worker processes that run math-verify for this rollout process (default: min(4, CPUs) = %(default)s).")
    group.add_argument(
        "--math-verify-memory-limit-mb", type=int, default=_DEFAULTS.memory_limit_mb, metavar="MB",
        help="Address-space cap of each worker, so a runaway expression cannot exhaust the host; 0: no cap "
             "(default: %(default)s).")


def verifier_options(args: Any) -> VerifierOptions:
    """The options from parsed flags; a namespace without them (a hand-made one) gets the defaults."""
    return VerifierOptions(
        timeout_s=float(getattr(args, "math_verify_timeout", None) or _DEFAULTS.timeout_s),
        num_workers=int(getattr(args, "math_verify_workers", None) or default_num_workers()),
        memory_limit_mb=int(getattr(args, "math_verify_memory_limit_mb", _DEFAULTS.memory_limit_mb)),
    )


def validate_args(args: Any) -> None:
    """Raise ``ValueError`` naming the flag when a value is out of range."""
    for flag, dest in (("--math-verify-timeout", "math_verify_timeout"), ("--math-verify-workers", "math_verify_workers")):
        value = getattr(args, dest, None)
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    verifier_options(args)  # the remaining range checks live in VerifierOptions
