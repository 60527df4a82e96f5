"""DAPO dynamic sampling: drop the groups whose rewards are all equal.

With GRPO-style group normalisation a group whose samples all got the same reward has zero advantage
everywhere, so it adds no gradient and only dilutes the batch. DAPO (Yu et al. 2025,
arXiv:2503.14476, "Dynamic Sampling") keeps sampling until the batch is full of groups with
``0 < #correct < G``; in Miles that is this filter plus ``--over-sampling-batch-size``, which the
rollout uses to keep fetching prompts while groups are dropped.

Decisions, with Miles's behaviour for comparison (``check_reward_nonzero_std``):

- A group is kept when the unbiased standard deviation of its rewards exceeds ``1e-8`` (Miles's test).
- A dropped group's reason is ``zero_std_<first reward rounded to 1 decimal>``: ``zero_std_1.0`` (all
  solved), ``zero_std_0.0`` or ``zero_std_-1.0`` (none solved, binary or DAPO rewards); the rollout
  counts it under ``rollout/dynamic_filter/drop_zero_std_1.0``.
- A group of **one** sample has no spread to measure. Miles drops it too, through a NaN standard
  deviation, under a misleading ``zero_std_<r>`` reason. We drop it with the reason ``single_sample``,
  and ``miles_validate_args`` refuses ``--n-samples-per-prompt 1`` with this filter, since then every
  group would be dropped and the rollout could never fill its batch.
- A group with a NaN reward is dropped with the reason ``nan_reward`` (Miles: ``zero_std_nan``).
- Nested lists (a generate function that returned several samples per prompt) are flattened first.
"""

from __future__ import annotations

import math
from typing import Any

from miles_core.data.sample import flatten_groups
from miles_core.plugins.types import DynamicFilterOutput

from miles_filters_dapo.group_rewards import scalar_reward

__all__ = ["STD_THRESHOLD", "check_reward_nonzero_std", "unbiased_std"]

#: Miles keeps a group when ``std(rewards) > 1e-8``.
STD_THRESHOLD = 1e-8


def unbiased_std(values: list[float]) -> float:
    """Sample standard deviation (divides by ``n - 1``, like ``torch.std``); needs at least two values."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def check_reward_nonzero_std(args: Any, samples: list[Any], **kwargs: Any) -> DynamicFilterOutput:
    """Keep the group when its rewards differ; otherwise drop it with the reason (see the module docstring)."""
    group = flatten_groups(samples)
    if not group:
        return DynamicFilterOutput(keep=False, reason="empty_group")
    rewards = [scalar_reward(args, sample) for sample in group]
    if any(math.isnan(r) for r in rewards):
        return DynamicFilterOutput(keep=False, reason="nan_reward")
    if len(rewards) == 1:
        return DynamicFilterOutput(keep=False, reason="single_sample")
    if unbiased_std(rewards) > STD_THRESHOLD:
        return DynamicFilterOutput(keep=True)
    return DynamicFilterOutput(keep=False, reason=f"zero_std_{round(rewards[0], 1)}")
