"""Train-side statistics of a rollout batch (``rollout/<key>``), as Miles logs them after advantages.

Per-token keys (log-probs, advantages, values, ...) are first averaged over each sample's trained
tokens, then over samples; per-sample scalars (rewards, lengths, ...) are averaged over samples.
Sums and counts are all-reduced, so every data-parallel rank reports the same numbers.
"""

from __future__ import annotations

from typing import Any

import torch

from miles_core.training.fsdp.distributed import all_reduce_sum

__all__ = ["PER_TOKEN_KEYS", "PER_SAMPLE_KEYS", "rollout_statistics"]

PER_TOKEN_KEYS = ("log_probs", "ref_log_probs", "rollout_log_probs", "returns", "advantages", "values",
                  "teacher_log_probs", "entropy")
PER_SAMPLE_KEYS = ("rewards", "raw_reward", "response_lengths", "total_lengths", "truncated")


def _sample_mean(values: Any, mask: Any) -> float:
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    mask = torch.as_tensor(mask, dtype=torch.float64).flatten()[: values.numel()]
    return float((values * mask).sum() / mask.sum().clamp(min=1.0))


def rollout_statistics(batch: dict[str, Any], device: torch.device) -> dict[str, float]:
    """``rollout/<key>`` means over the samples of every rank (``batch`` is this rank's share)."""
    masks = batch["loss_masks"]
    keys, sums, counts = [], [], []
    for key in PER_TOKEN_KEYS:
        values = batch.get(key)
        if values is None or len(values) != len(masks):
            continue
        keys.append(key)
        sums.append(sum(_sample_mean(v, m) for v, m in zip(values, masks, strict=True)))
        counts.append(len(values))
    for key in PER_SAMPLE_KEYS:
        values = batch.get(key)
        if values is None or len(values) != len(masks):
            continue
        keys.append(key)
        sums.append(float(sum(float(v) for v in values)))
        counts.append(len(values))
    if not keys:
        return {}
    totals = all_reduce_sum(sums + counts, device).tolist()
    n = len(keys)
    return {f"rollout/{key}": totals[i] / max(totals[n + i], 1.0) for i, key in enumerate(keys)}
