"""The running batch's KV cache: rows of different lengths, left-padded to one length, that can be joined
and split between decode steps (what continuous batching needs from a transformers ``DynamicCache``).

Every row is left-padded, so the newest token of every row sits in the last column. Positions are passed
explicitly (``next_position`` per row), so padding never shifts a row's rotary positions, and the
attention mask hides the padding. Keys are stored after rotary embedding, so moving a row's cache
columns (to pad or trim) changes nothing it attends to. Joining two batches pads the shorter one on the
left; dropping rows trims the columns that have become padding in every remaining row.

This needs full-attention layers whose cache is a plain ``DynamicLayer`` (Llama, Qwen2/3, Mistral
without sliding window, …). :func:`supports_joining` says whether a cache qualifies; the scheduler falls
back to static batching (admit new rows only when the batch is empty) when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def supports_joining(cache) -> bool:
    """Whether rows of this cache can be joined, selected and trimmed by :class:`KVBatch`."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


@dataclass
class KVBatch:
    """Cache, attention mask and next positions of the running rows."""

    cache: object  # a transformers DynamicCache
    attention_mask: torch.Tensor  # [B, L] long, 1 for real tokens
    next_position: torch.Tensor  # [B] long: the rotary position of each row's next token

    @property
    def batch_size(self) -> int:
        return int(self.attention_mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.attention_mask.shape[1])

    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention mask and position ids for one decode step (one new token per row)."""
        ones = torch.ones((self.batch_size, 1), dtype=self.attention_mask.dtype, device=self.attention_mask.device)
        return torch.cat([self.attention_mask, ones], dim=1), self.next_position.unsqueeze(1)

    def after_step(self, step_mask: torch.Tensor) -> None:
        self.attention_mask = step_mask
        self.next_position = self.next_position + 1

    def join(self, other: KVBatch) -> None:
        """Append ``other``'s rows after this batch's rows (both caches must support joining)."""
        length = max(self.length, other.length)
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, length, dim=2), _pad_left(theirs.keys, length, dim=2)])
            mine.values = torch.cat([_pad_left(mine.values, length, dim=2), _pad_left(theirs.values, length, dim=2)])
        self.attention_mask = torch.cat(
            [_pad_left(self.attention_mask, length, dim=1), _pad_left(other.attention_mask, length, dim=1)]
        )
        self.next_position = torch.cat([self.next_position, other.next_position])

    def keep_rows(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in that order), then drop the columns that are padding in all of them.

        Caches that cannot be joined keep their columns and use the cache's own ``batch_select_indices``.
        """
        index = torch.tensor(rows, dtype=torch.long, device=self.attention_mask.device)
        mask = self.attention_mask.index_select(0, index)
        if not supports_joining(self.cache):
            self.cache.batch_select_indices(index)
            self.attention_mask = mask
            self.next_position = self.next_position.index_select(0, index)
            return
        real_columns = mask.any(dim=0).nonzero()
        first = int(real_columns[0]) if real_columns.numel() else mask.shape[1]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]
        self.attention_mask = mask[:, first:]
        self.next_position = self.next_position.index_select(0, index)


def _pad_left(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    # F.pad lists (before, after) pairs starting from the last dimension.
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)
