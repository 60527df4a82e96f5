"""Evaluation rollouts over ``--eval-prompt-data name path [name path ...]``.

Every prompt is answered ``--n-samples-per-eval-prompt`` times with the eval sampling parameters
(``--eval-temperature/top-p/top-k/max-response-len``, each inheriting the rollout value when unset)
and scored with the eval reward key. No filter drops anything: an evaluation measures every prompt.
Per dataset the output holds ``{"rewards", "truncated", "samples"}`` and the metrics
``eval/<name>`` (mean reward; a failed sample counts as 0 and is reported in ``eval/<name>-failed_ratio``),
``eval/<name>-truncated_ratio``, ``eval/<name>/response_len/*`` and ``eval/<name>-pass@k``.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
from collections import Counter
from typing import Any

from miles_core.data.prompt_dataset import PromptDataset, prompt_dataset_from_args
from miles_core.data.sample import Sample, SampleStatus
from miles_core.rewards.value import reward_value
from miles_core.rollout.failures import RolloutFailedError, failure_kind
from miles_core.rollout.generate_and_reward import RolloutParts, generate_and_reward_group
from miles_core.rollout.generate_types import GenerateState
from miles_core.rollout.rollout_metrics import pass_at_k_metrics, sample_metrics
from miles_core.rollout.rollout_types import RolloutFnEvalOutput

__all__ = ["eval_dataset_paths", "load_eval_datasets", "run_eval_rollout"]


def eval_dataset_paths(args: Any) -> list[tuple[str, str]]:
    """``--eval-prompt-data`` as ``(name, path)`` pairs (a single path is named after its file)."""
    values = list(getattr(args, "eval_prompt_data", None) or [])
    if len(values) == 1:
        from pathlib import Path

        return [(Path(values[0].split("@")[0]).stem, values[0])]
    if len(values) % 2:
        raise ValueError(f"--eval-prompt-data takes name/path pairs (e.g. 'aime data/aime.jsonl'); got {values}")
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    names = [name for name, _ in pairs]
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise ValueError(f"--eval-prompt-data names must be unique; repeated: {duplicates}")
    return pairs


def load_eval_datasets(args: Any) -> list[tuple[str, PromptDataset]]:
    return [(name, prompt_dataset_from_args(args, path)) for name, path in eval_dataset_paths(args)]


def _eval_groups(dataset: PromptDataset, n: int) -> list[list[Sample]]:
    groups, index = [], 0
    for group_index, record in enumerate(dataset.records):
        group = []
        for _ in range(n):
            group.append(Sample(index=index, group_index=group_index, prompt=copy.deepcopy(record.prompt),
                                label=copy.deepcopy(record.label), metadata=copy.deepcopy(record.metadata)))
            index += 1
        groups.append(group)
    return groups


async def _eval_one(parts: RolloutParts, state: GenerateState, name: str, dataset: PromptDataset) -> tuple[dict, dict]:
    args = parts.args
    n = int(getattr(args, "n_samples_per_eval_prompt", None) or 1)
    groups = await asyncio.gather(*(
        generate_and_reward_group(parts, state, group, evaluation=True, seed_salt=f"eval:{name}")
        for group in _eval_groups(dataset, n)
    ))
    for group in groups:
        if all(s.status != SampleStatus.FAILED for s in group):
            parts.plugin_manager.hook.miles_after_rewards(args=args, samples=group, evaluation=True)
    flat = [s for g in groups for s in g]
    rewards = [reward_value(args, s, evaluation=True) if s.reward is not None else 0.0 for s in flat]
    truncated = [s.status == SampleStatus.TRUNCATED for s in flat]
    failed = Counter(failure_kind(s) for s in flat if s.status == SampleStatus.FAILED)
    if flat and sum(failed.values()) == len(flat):
        first = next(s.metadata.get("error") for s in flat if s.status == SampleStatus.FAILED)
        raise RolloutFailedError(f"eval dataset {name!r}: all {len(flat)} samples failed ({dict(failed)}); "
                                 f"first error: {first}")

    metrics = {f"eval/{name}": float(statistics.fmean(rewards)) if rewards else 0.0,
               f"eval/{name}-truncated_ratio": sum(truncated) / len(flat) if flat else 0.0,
               f"eval/{name}-failed_ratio": sum(failed.values()) / len(flat) if flat else 0.0}
    metrics.update({f"eval/{name}/failed/{kind}": float(c) for kind, c in sorted(failed.items())})
    ok = [s for s in flat if s.reward is not None]
    metrics.update(sample_metrics(args, ok, prefix=f"eval/{name}", evaluation=True))
    metrics.pop(f"eval/{name}/truncated_ratio", None)  # reported as eval/<name>-truncated_ratio
    if n > 1:
        metrics.update(pass_at_k_metrics(args, groups, name=f"eval/{name}-pass@{{k}}", evaluation=True))
    return {"rewards": rewards, "truncated": truncated, "samples": flat}, metrics


async def run_eval_rollout(parts: RolloutParts, datasets: list[tuple[str, PromptDataset]],
                           state: GenerateState) -> RolloutFnEvalOutput:
    """Evaluate every dataset (concurrently, bounded by the state's semaphore)."""
    results = await asyncio.gather(*(_eval_one(parts, state, name, dataset) for name, dataset in datasets))
    data, metrics = {}, {}
    for (name, _), (entry, entry_metrics) in zip(datasets, results, strict=True):
        data[name] = entry
        metrics.update(entry_metrics)
    return RolloutFnEvalOutput(data=data, metrics=metrics)
