"""``miles_varlen_sdpa``: PyTorch SDPA that attends within each packed sample (varlen, no big mask).

Transformers turns a packed row (position ids restarting at 0) into a block-diagonal ``[T, T]`` mask
for SDPA and eager attention. That is correct but costs attention over the whole packed row — ``T²``
instead of ``Σ len²`` — which makes packing slower than padding where flash-attention's varlen kernel
is missing (CPU runs, GPUs without ``flash_attn``). This attention function cuts the row at the
position-id restarts and runs causal SDPA per sample; with a padding mask (fixed micro-batches) or a
single sequence it is plain SDPA. It is registered with transformers' ``AttentionInterface`` (and a mask
function that skips building the packed mask), and used wherever ``sdpa`` is selected for training.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["VARLEN_SDPA", "register_varlen_sdpa", "segment_bounds"]

VARLEN_SDPA = "miles_varlen_sdpa"

_bounds_cache: dict[tuple[int, int, int], list[int]] = {}


def segment_bounds(position_ids: torch.Tensor) -> list[int]:
    """Start offsets of the packed samples of a ``[1, T]`` row, plus ``T`` (cached per forward pass)."""
    key = (position_ids.data_ptr(), position_ids.shape[-1], position_ids._version)
    bounds = _bounds_cache.get(key)
    if bounds is None:
        starts = (position_ids[0] == 0).nonzero().flatten().tolist()
        if not starts or starts[0] != 0:
            starts = [0] + starts
        bounds = starts + [position_ids.shape[-1]]
        _bounds_cache.clear()
        _bounds_cache[key] = bounds
    return bounds


def _varlen_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                         position_ids: torch.Tensor | None = None, **kwargs: Any):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None or position_ids is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    bounds = segment_bounds(position_ids.reshape(1, -1))
    if len(bounds) == 2:
        return sdpa_attention_forward(module, query, key, value, None, dropout=dropout, scaling=scaling, **kwargs)
    outputs = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        out, _ = sdpa_attention_forward(module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
                                        None, dropout=dropout, scaling=scaling, **kwargs)
        outputs.append(out)  # [1, len, heads, head_dim]
    return torch.cat(outputs, dim=1), None


def _varlen_sdpa_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any):
    """No 4-D mask for packed or unpadded rows (the attention cuts segments itself); SDPA's otherwise."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_varlen_sdpa() -> str:
    """Register the attention and mask functions with transformers (idempotent); returns their name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN_SDPA, _varlen_sdpa_forward)
    AttentionMaskInterface.register(VARLEN_SDPA, _varlen_sdpa_mask)
    return VARLEN_SDPA
