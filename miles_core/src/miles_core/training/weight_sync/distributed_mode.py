"""``distributed`` mode: trainer rank 0 broadcasts each tensor to the engines through a process group.

Per sync (the session SGLang documents):

1. ``/init_weights_update_group`` on every engine, each told its ``rank_offset`` in a group of
   ``1 + Σ engine ranks`` processes, while trainer rank 0 joins as rank 0 (gloo on CPU, NCCL on GPU);
2. per bucket: ``/update_weights_from_distributed`` with the bucket's names, dtypes and shapes on every
   engine (they wait to receive), while rank 0 ``broadcast``s each tensor in that order; the last
   bucket carries ``weight_version`` and ``flush_cache``;
3. ``/destroy_weights_update_group`` and the trainer destroys its side.

Both sides build the group with :mod:`miles_core.engines.weight_group` (SGLang's own recipe: a TCP
rendezvous hosted by the trainer and a store prefixed with the group name), so the trainer meets real
SGLang servers and embedded engines alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import torch

from miles_core.engines.process import free_port
from miles_core.engines.weight_group import destroy_weights_update_group, init_weights_update_group
from miles_core.training.weight_sync.engine_http import EngineCaller, WeightSyncError
from miles_core.training.weight_sync.hf_tensors import NamedTensor

__all__ = ["GroupFormationError", "dtype_name", "send_distributed"]


class GroupFormationError(WeightSyncError):
    """The trainer and the engines could not form the broadcast group (nothing was sent yet)."""


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``"bfloat16"`` (what SGLang's payload carries)."""
    return str(dtype).removeprefix("torch.")


def send_distributed(
    caller: EngineCaller,
    buckets: Iterable[list[NamedTensor]],
    *,
    weight_version: str,
    master_address: str,
    ranks_per_engine: list[int],
    backend: str,
    timeout_s: float = 600.0,
) -> int:
    """Run one distributed update against every engine of ``caller``; returns bytes broadcast."""
    group_name = f"miles-weights-{uuid.uuid4().hex[:12]}"
    port = free_port(master_address)
    world_size = 1 + sum(ranks_per_engine)
    offsets = [1 + sum(ranks_per_engine[:i]) for i in range(len(ranks_per_engine))]
    init_payloads = [
        {"master_address": master_address, "master_port": port, "rank_offset": offset, "world_size": world_size,
         "group_name": group_name, "backend": backend}
        for offset in offsets
    ]
    joining = caller.submit_all("/init_weights_update_group", init_payloads)
    try:
        group = init_weights_update_group(master_address, port, 0, world_size, group_name, backend=backend,
                                          timeout=timeout_s)
    except Exception as exc:
        try:
            caller.wait_all(joining)
        except WeightSyncError as engine_error:
            raise GroupFormationError(str(engine_error)) from exc
        raise GroupFormationError(
            f"could not form the weight-update group {group_name} at {master_address}:{port}: {exc}") from exc
    try:
        caller.wait_all(joining)
    except WeightSyncError as engine_error:
        destroy_weights_update_group(group)
        raise GroupFormationError(str(engine_error)) from engine_error
    sent = 0
    try:
        pending = None
        for bucket in buckets:
            if pending is not None:
                sent += _broadcast_bucket(caller, group, group_name, pending, last=False, weight_version=weight_version)
            pending = bucket
        if pending is None:
            raise ValueError("the model has no tensors to send")
        sent += _broadcast_bucket(caller, group, group_name, pending, last=True, weight_version=weight_version)
    finally:
        try:
            caller.post_all("/destroy_weights_update_group", {"group_name": group_name})
        finally:
            destroy_weights_update_group(group)
    return sent


def _broadcast_bucket(caller: EngineCaller, group, group_name: str, bucket: list[NamedTensor], *, last: bool,
                      weight_version: str) -> int:
    import torch.distributed as dist

    payload = {
        "names": [name for name, _ in bucket],
        "dtypes": [dtype_name(t.dtype) for _, t in bucket],
        "shapes": [list(t.shape) for _, t in bucket],
        "group_name": group_name,
        "flush_cache": last,
    }
    if last:
        payload["weight_version"] = weight_version
    receiving = caller.submit_all("/update_weights_from_distributed", payload)
    for _, tensor in bucket:
        dist.broadcast(tensor, src=0, group=group)
    caller.wait_all(receiving)
    return sum(t.numel() * t.element_size() for _, t in bucket)
