"""Full HF-named tensors out of a sharded model, one at a time, grouped into size-capped buckets.

FSDP2 parameters are ``DTensor`` shards; ``full_tensor()`` all-gathers one of them, so **every train
rank** must walk the parameters in the same order (the walk is a sequence of collectives). Only one
gathered tensor plus one bucket is alive at a time, never the whole model twice: a 7B model with the
default 512 MiB buffer peaks at 512 MiB above its shards.

Names are the HF checkpoint names (``model.layers.0.self_attn.q_proj.weight``): FSDP2 does not rename
parameters. A parameter shared under two names (tied input/output embeddings) is sent once, under the
name the HF checkpoint stores it by, as ``save_pretrained`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from miles_core.training.sharding import reshard

__all__ = ["NamedTensor", "iter_full_tensors", "iter_buckets", "bucket_bytes"]

NamedTensor = tuple[str, torch.Tensor]


def _persistent_buffers(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    for module_name, module in model.named_modules():
        non_persistent = getattr(module, "_non_persistent_buffers_set", set())
        for name, buf in module.named_buffers(recurse=False):
            if buf is not None and name not in non_persistent:
                yield (f"{module_name}.{name}" if module_name else name), buf


def iter_full_tensors(
    model: nn.Module, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Iterator[NamedTensor]:
    """Yield ``(hf_name, full_tensor)`` for every parameter and persistent buffer (collective).

    :param dtype: cast floating tensors to this dtype (what the engines serve, e.g. bfloat16).
    :param device: where the yielded tensor lives (``"cpu"`` for serialisation; ``None`` keeps the
        gathered device, e.g. CUDA for an NCCL broadcast).
    """
    reshard(model)
    for name, tensor in list(model.named_parameters()) + list(_persistent_buffers(model)):
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        full = full.detach()
        if dtype is not None and full.is_floating_point():
            full = full.to(dtype)
        if device is not None:
            full = full.to(device)
        yield name, full.contiguous()


def bucket_bytes(bucket: list[NamedTensor]) -> int:
    return sum(t.numel() * t.element_size() for _, t in bucket)


def iter_buckets(named_tensors: Iterable[NamedTensor], max_bytes: int) -> Iterator[list[NamedTensor]]:
    """Group tensors, in order, into buckets of at most ``max_bytes`` (a larger tensor goes alone)."""
    if max_bytes <= 0:
        raise ValueError(f"--update-weight-buffer-size must be positive, got {max_bytes}")
    bucket: list[NamedTensor] = []
    size = 0
    for name, tensor in named_tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > max_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, tensor))
        size += nbytes
    if bucket:
        yield bucket
