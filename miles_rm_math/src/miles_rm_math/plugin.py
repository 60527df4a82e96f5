"""Entry point of miles-rm-math: the hook implementations it registers with Miles.

Importing this module is cheap (no sympy, no math-verify): the checks run in worker processes that
import math-verify when the first reward is computed.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from miles_core.data.sample import flatten_groups

from miles_core import RewardModelSpec, hookimpl
from miles_rm_math import options
from miles_rm_math.rewards import DAPO_REWARD_KEY, REWARD_TYPES, reward_function

logger = logging.getLogger(__name__)


@hookimpl
def miles_reward_models() -> Iterable[RewardModelSpec]:
    """``math``, ``dapo``, ``deepscaler``, ``gemma_math`` and their ``boxed_`` variants."""
    for name, reward_type in REWARD_TYPES.items():
        yield RewardModelSpec(
            name=name,
            description=reward_type.description,
            fn=reward_function(name),
            reward_key=DAPO_REWARD_KEY if reward_type.output == "dapo" else None,
        )


@hookimpl
def miles_add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_arguments(parser)


@hookimpl
def miles_validate_args(args: argparse.Namespace) -> None:
    options.validate_args(args)


@hookimpl
def miles_after_rollout(args: argparse.Namespace, rollout_id: int, samples: list[list[Any]]) -> None:
    """One warning per rollout that counts the samples whose answer check timed out or failed."""
    failures: Counter[str] = Counter()
    total = 0
    for sample in flatten_groups(samples):
        total += 1
        status = (getattr(sample, "metadata", None) or {}).get("math_verify")
        if status:
            failures[status] += 1
    if failures:
        logger.warning(
            "miles-rm-math: rollout %s: %s of %d samples could not be checked and scored as wrong answers "
            "(see sample.metadata['math_verify_detail']; raise --math-verify-timeout if this is frequent)",
            rollout_id, ", ".join(f"{n} {status}" for status, n in sorted(failures.items())), total)
