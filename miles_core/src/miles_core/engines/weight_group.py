"""The process group a trainer and its rollout engines share to broadcast new weights.

Trainer and engines already belong to other groups (the trainer's default group; an engine's own TP
group), so this one is built beside them from a fresh TCP rendezvous, the way SGLang, verl and OpenRLHF
do (``init_custom_process_group``): rendezvous at ``tcp://master_address:master_port``, a store prefixed
with ``group_name``, and torch's process-group constructor with that name. Doing it exactly as SGLang
does is what lets the same trainer code talk to real SGLang servers and to the embedded engine:

- the trainer calls :func:`init_weights_update_group` with ``rank=0`` while every engine's
  ``POST /init_weights_update_group`` joins with ``rank=rank_offset``;
- for each bucket the trainer ``torch.distributed.broadcast(tensor, src=0, group=group)``s every tensor
  while the engines' ``POST /update_weights_from_distributed`` receive them in the same order;
- both sides finish with :func:`destroy_weights_update_group`.

Backend ``gloo`` works on CPU tensors, ``nccl`` on CUDA tensors.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import torch


def init_weights_update_group(
    master_address: str,
    master_port: int,
    rank: int,
    world_size: int,
    group_name: str,
    backend: str = "gloo",
    timeout: timedelta | float = 300.0,
) -> Any:
    """Join (or, for rank 0, host) the weight-broadcast group and return its ``ProcessGroup``."""
    import torch.distributed as dist
    from torch.distributed.distributed_c10d import Backend, PrefixStore, _new_process_group_helper, _world, rendezvous

    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU) or 'nccl' (GPU), got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA; use 'gloo' on CPU")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a group of world_size {world_size}")
    if not isinstance(timeout, timedelta):
        timeout = timedelta(seconds=float(timeout))
    store, rank, world_size = next(rendezvous(f"tcp://{master_address}:{int(master_port)}", rank, world_size,
                                              timeout=timeout))
    store.set_timeout(timeout)
    store = PrefixStore(group_name, store)
    options = "backend_options" if "backend_options" in inspect.signature(_new_process_group_helper).parameters \
        else "pg_options"
    group, _ = _new_process_group_helper(world_size, rank, [], Backend(backend), store, group_name=group_name,
                                         timeout=timeout, **{options: None})
    _world.pg_group_ranks[group] = {i: i for i in range(world_size)}
    return group


def destroy_weights_update_group(group: Any) -> None:
    """Leave and free the group."""
    import torch.distributed as dist

    dist.destroy_process_group(group)


def parse_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` or ``"torch.bfloat16"`` → ``torch.bfloat16`` (both spellings travel in payloads)."""
    dtype = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype
