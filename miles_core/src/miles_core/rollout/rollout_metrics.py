"""Metrics of a batch of generated samples (Miles's rollout metric names, ``rollout/*`` and ``passrate/*``).

- ``<prefix>/response_len/{mean,median,max,min}``: trainable (loss-masked) response lengths;
- ``<prefix>/truncated_ratio``: share of samples that hit the length limit;
- ``<prefix>/raw_reward``: mean reward before shaping;
- ``<prefix>/zero_std/count_<reward>``, ``all_zero_percentage``, ``all_one_percentage``: groups whose
  rewards are all equal (no GRPO signal);
- ``pass@k``: the unbiased estimator ``1 - C(n-c, k) / C(n, k)`` of Chen et al. 2021 ("Evaluating
  Large Language Models Trained on Code", eq. 1), averaged over groups, with correct meaning reward == 1,
  for k = 1, 2, 4, ... up to the group size.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.rewards.value import raw_reward_value, reward_value

__all__ = ["sample_metrics", "zero_std_metrics", "pass_at_k", "pass_at_k_metrics", "weight_version_metrics"]


def sample_metrics(args: Any, samples: list[Sample], *, prefix: str = "rollout", evaluation: bool = False) -> dict[str, float]:
    if not samples:
        return {}
    lengths = [s.effective_response_length for s in samples]
    metrics = {
        f"{prefix}/response_len/mean": float(statistics.fmean(lengths)),
        f"{prefix}/response_len/median": float(statistics.median(lengths)),
        f"{prefix}/response_len/max": float(max(lengths)),
        f"{prefix}/response_len/min": float(min(lengths)),
        f"{prefix}/truncated_ratio": sum(s.status == SampleStatus.TRUNCATED for s in samples) / len(samples),
    }
    rewards = [raw_reward_value(args, s, evaluation=evaluation) for s in samples if s.reward is not None]
    if rewards:
        metrics[f"{prefix}/raw_reward"] = float(statistics.fmean(rewards))
    return metrics


def zero_std_metrics(args: Any, groups: list[list[Sample]], *, prefix: str = "rollout") -> dict[str, float]:
    """Counts of groups whose rewards are all the same value, by that value."""
    if not groups:
        return {}
    counts: Counter[str] = Counter()
    all_zero = all_one = 0
    for group in groups:
        values = [reward_value(args, s) for s in group]
        if len(values) > 1 and max(values) - min(values) < 1e-8:
            counts[f"{round(values[0], 1)}"] += 1
            all_zero += values[0] == 0
            all_one += values[0] == 1
    metrics = {f"{prefix}/zero_std/count_{value}": float(n) for value, n in sorted(counts.items())}
    metrics[f"{prefix}/zero_std/all_zero_percentage"] = all_zero / len(groups)
    metrics[f"{prefix}/zero_std/all_one_percentage"] = all_one / len(groups)
    return metrics


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``num_samples`` tries of which ``num_correct`` are right."""
    if num_samples - num_correct < k:
        return 1.0
    return 1.0 - math.comb(num_samples - num_correct, k) / math.comb(num_samples, k)


def pass_at_k_metrics(args: Any, groups: list[list[Sample]], *, name: str = "passrate/pass@{k}",
                      evaluation: bool = False) -> dict[str, float]:
    """pass@k for k = 1, 2, 4, ... ≤ the smallest group, averaged over groups (failed samples count as wrong)."""
    if not groups:
        return {}
    group_size = min(len(g) for g in groups)
    metrics: dict[str, float] = {}
    k = 1
    while k <= group_size:
        values = []
        for group in groups:
            correct = sum(1 for s in group if s.reward is not None and reward_value(args, s, evaluation=evaluation) == 1)
            values.append(pass_at_k(len(group), correct, k))
        metrics[name.format(k=k)] = float(statistics.fmean(values))
        k *= 2
    return metrics


def weight_version_metrics(samples: list[Sample], *, prefix: str = "rollout") -> dict[str, float]:
    """How many samples mix responses from different weight versions (partial rollouts over an update)."""
    with_versions = [s for s in samples if s.weight_versions]
    if not with_versions:
        return {}
    mixed = sum(len(set(s.weight_versions)) > 1 for s in with_versions)
    metrics = {f"{prefix}/weight_version/mixed_version_ratio": mixed / len(with_versions)}
    try:
        latest = [max(float(v) for v in s.weight_versions) for s in with_versions]
    except ValueError:
        return metrics
    metrics[f"{prefix}/weight_version/max"] = max(latest)
    metrics[f"{prefix}/weight_version/min"] = min(latest)
    return metrics
