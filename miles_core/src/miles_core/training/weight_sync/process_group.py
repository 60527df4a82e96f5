"""A process group between trainer rank 0 and the engines, outside the train group.

The trainer already belongs to its data-parallel group, and the engines belong to none of it, so the
weight-update group cannot come from ``dist.new_group``. SGLang's ``/init_weights_update_group``
builds its side with a TCP rendezvous at ``tcp://master_address:master_port`` (the trainer hosts the
store as rank 0), a ``PrefixStore(group_name, …)``, and torch's process-group constructor; this
function builds the trainer's side the same way, so the two meet — against real SGLang servers (NCCL)
and against the embedded engine (gloo) alike. ``dist.broadcast(t, src=0, group=pg)`` then works.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import torch.distributed as dist
from torch.distributed import distributed_c10d as c10d

__all__ = ["init_custom_process_group", "destroy_custom_process_group", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the store binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def init_custom_process_group(
    *, backend: str, master_address: str, master_port: int, rank: int, world_size: int, group_name: str,
    timeout_s: float = 600.0,
) -> dist.ProcessGroup:
    """Create (or join) the group ``group_name`` of ``world_size`` processes; rank 0 hosts the store.

    Blocks until every member has joined.
    """
    timeout = timedelta(seconds=timeout_s)
    store, rank, world_size = next(
        dist.rendezvous(f"tcp://{master_address}:{master_port}", rank, world_size, timeout=timeout)
    )
    store.set_timeout(timeout)
    store = dist.PrefixStore(group_name, store)
    pg, _ = c10d._new_process_group_helper(
        world_size, rank, [], backend, store, group_name=group_name, timeout=timeout,
    )
    c10d._world.pg_group_ranks[pg] = {i: i for i in range(world_size)}
    return pg


def destroy_custom_process_group(pg: dist.ProcessGroup | None) -> None:
    if pg is not None:
        dist.destroy_process_group(pg)
