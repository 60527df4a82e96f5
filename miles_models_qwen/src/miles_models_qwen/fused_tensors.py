"""Megatron's fused tensors, built from and split into HF's separate projections.

- ``linear_qkv`` is grouped: for each of the G key/value groups, the rows of that group's H/G query
  heads, then its key head, then its value head (``[G, (H/G + 2) * head_dim, hidden]`` flattened to 2-D).
  Splitting a full tensor along dim 0 by tensor-parallel rank therefore gives each rank whole groups.
- ``linear_fc1`` of a SwiGLU MLP is ``[gate; up]`` along dim 0 (Megatron applies the activation to the
  first half).

All functions act on full (tensor-parallel-gathered) tensors and return new contiguous tensors, so the
result never shares storage with its input (safe to save with safetensors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["fuse_qkv", "split_qkv", "fuse_gate_up", "split_gate_up"]


def fuse_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_query_groups: int, head_dim: int) -> torch.Tensor:
    """HF ``q_proj``/``k_proj``/``v_proj`` weights (2-D) or biases (1-D) → Megatron ``linear_qkv``."""
    import torch

    trailing = q.shape[1:]  # (hidden,) for weights, () for biases
    groups = [
        q.reshape(num_query_groups, -1, head_dim, *trailing),
        k.reshape(num_query_groups, 1, head_dim, *trailing),
        v.reshape(num_query_groups, 1, head_dim, *trailing),
    ]
    return torch.cat(groups, dim=1).reshape(-1, *trailing).contiguous()


def split_qkv(qkv: torch.Tensor, num_query_groups: int, heads_per_group: int, head_dim: int,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Megatron ``linear_qkv`` weight or bias → HF ``(q, k, v)``."""
    trailing = qkv.shape[1:]
    expected_rows = num_query_groups * (heads_per_group + 2) * head_dim
    if qkv.shape[0] != expected_rows:
        raise ValueError(
            f"linear_qkv has {qkv.shape[0]} rows; {num_query_groups} groups x ({heads_per_group} query heads + key + "
            f"value) x head_dim {head_dim} = {expected_rows}"
        )
    grouped = qkv.reshape(num_query_groups, heads_per_group + 2, head_dim, *trailing)
    q, k, v = grouped.split([heads_per_group, 1, 1], dim=1)
    return tuple(t.reshape(-1, *trailing).contiguous() for t in (q, k, v))  # type: ignore[return-value]


def fuse_gate_up(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """HF ``gate_proj``/``up_proj`` weights → Megatron ``linear_fc1`` (``[gate; up]``)."""
    import torch

    return torch.cat([gate, up], dim=0).contiguous()


def split_gate_up(fc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Megatron ``linear_fc1`` → HF ``(gate_proj, up_proj)``."""
    if fc1.shape[0] % 2:
        raise ValueError(f"linear_fc1 of a SwiGLU MLP needs an even number of rows, got {fc1.shape[0]}")
    gate, up = fc1.chunk(2, dim=0)
    return gate.clone(), up.clone()
