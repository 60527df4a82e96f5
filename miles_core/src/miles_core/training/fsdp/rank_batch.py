"""This rank's share of a rollout batch: which samples, in which optimizer step, cut how.

Every rank receives the whole rollout batch (the same object, cheap under Ray's object store) and
takes its share here, so the split is a pure function of the batch and the world size: world size 1
and world size N train on exactly the same samples per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from miles_core.training.batching import (
    MicroBatch,
    collate,
    plan_micro_batches,
    split_across_ranks,
    split_into_steps,
)
from miles_core.training.fsdp.distributed import all_reduce_max

__all__ = ["RankBatch", "select_samples", "take_rank_share", "build_micro_batches"]


def select_samples(batch: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """The per-sample lists of ``batch`` restricted to ``indices`` (other values are copied as is)."""
    n = len(batch["tokens"])
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, (list, tuple)) and len(value) == n:
            out[key] = [value[i] for i in indices]
        else:
            out[key] = value
    return out


@dataclass
class RankBatch:
    """The samples this rank trains on, with the step each belongs to.

    ``data`` holds this rank's samples (local indices ``0..len-1``); ``steps[s]`` lists the local
    indices of optimizer step ``s``; ``step_sizes[s]`` and ``step_tokens[s]`` are that step's sample
    count and trained-token count over **all** ranks (the loss normalisers); ``global_indices[i]`` is
    local sample ``i``'s position in the rollout batch.
    """

    data: dict[str, Any]
    steps: list[list[int]]
    step_sizes: list[int]
    step_tokens: list[int]
    global_indices: list[int]

    @property
    def total_lengths(self) -> list[int]:
        return self.data["total_lengths"]

    def __len__(self) -> int:
        return len(self.data["tokens"])


def _normalise(train_data: dict[str, Any]) -> dict[str, Any]:
    data = dict(train_data)
    if "tokens" not in data or "response_lengths" not in data:
        raise KeyError("train_data needs 'tokens' and 'response_lengths' (see samples_to_train_data)")
    data["total_lengths"] = [len(t) for t in data["tokens"]]
    if data.get("loss_masks") is None:
        data["loss_masks"] = [[1] * int(r) for r in data["response_lengths"]]
    for i, (mask, length) in enumerate(zip(data["loss_masks"], data["response_lengths"], strict=True)):
        if len(mask) != int(length):
            raise ValueError(f"sample {i}: loss mask has {len(mask)} entries for a response of {length} tokens")
    return data


def take_rank_share(
    train_data: dict[str, Any], *, rank: int, world_size: int, num_steps: int, balance: bool
) -> RankBatch:
    """Cut the rollout into ``num_steps`` steps and keep this rank's samples of each."""
    data = _normalise(train_data)
    lengths = data["total_lengths"]
    mine: list[int] = []
    steps: list[list[int]] = []
    sizes, tokens = [], []
    for step in split_into_steps(len(lengths), num_steps):
        share = split_across_ranks(list(step), lengths, world_size, balance)[rank]
        steps.append(list(range(len(mine), len(mine) + len(share))))
        mine.extend(share)
        sizes.append(len(step))
        tokens.append(int(sum(sum(int(x) for x in data["loss_masks"][i]) for i in step)))
    return RankBatch(select_samples(data, mine), steps, sizes, tokens, mine)


def build_micro_batches(
    rank_batch: RankBatch,
    local_indices: list[int],
    *,
    device: torch.device,
    packed: bool,
    micro_batch_size: int,
    max_tokens: int | None,
    pad_token_id: int,
) -> list[MicroBatch]:
    """Micro-batches of ``local_indices``, as many on this rank as on the busiest rank.

    Dynamic batching (``max_tokens`` set) packs; fixed batching pads unless ``packed``.
    """
    lengths = rank_batch.total_lengths
    if max_tokens:
        plan = plan_micro_batches(local_indices, lengths, max_tokens=max_tokens)
        count = all_reduce_max(len(plan), device)
        if count > len(plan):  # spread this rank's samples over as many passes as the busiest rank runs
            plan = plan_micro_batches(local_indices, lengths, max_tokens=max_tokens, min_count=count)
    else:
        plan = plan_micro_batches(local_indices, lengths, micro_batch_size=micro_batch_size)
        count = all_reduce_max(len(plan), device)
        plan += [[] for _ in range(count - len(plan))]
    tokens, response_lengths = rank_batch.data["tokens"], rank_batch.data["response_lengths"]
    return [collate(tokens, response_lengths, indices, packed=packed, pad_token_id=pad_token_id) for indices in plan]

