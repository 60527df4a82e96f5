"""The data-parallel process group of the train ranks: NCCL on GPUs, gloo on CPU.

One group spans every train rank; FSDP2 shards over a 1-D device mesh of it. On GPUs the group gets
both backends (``cpu:<--fsdp-cpu-backend>,cuda:nccl``): NCCL for the model's collectives, and a CPU
backend for whatever lives in host memory — ``--fsdp-cpu-offload`` shards (clipped and stepped on CPU)
and offloaded weights gathered for a weight sync while colocated engines hold the GPU.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

__all__ = ["init_train_group", "pick_device", "all_reduce_sum", "all_reduce_max", "destroy_train_group"]


def pick_device(rank: int) -> torch.device:
    """``cuda:<local rank>`` when CUDA is visible, else CPU.

    Under Ray each train actor sees only its own GPU, so the local index is usually 0; ``LOCAL_RANK``
    wins when a launcher sets it.
    """
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
        local = local if local < torch.cuda.device_count() else 0
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def init_train_group(
    rank: int, world_size: int, master_addr: str, master_port: int, device: torch.device,
    *, cpu_backend: str = "gloo", with_cpu_backend: bool = True, timeout_s: float = 1800.0,
) -> DeviceMesh:
    """Join the train process group (creating it if this process has none) and return its mesh."""
    if not dist.is_initialized():
        if device.type == "cuda":
            backend = f"cpu:{cpu_backend},cuda:nccl" if with_cpu_backend else "nccl"
        else:
            backend = "gloo"
        dist.init_process_group(
            backend=backend, init_method=f"tcp://{master_addr}:{master_port}", rank=rank, world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )  # no device_id: an eagerly bound NCCL group would make the weight-update group a split of it
    elif dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise RuntimeError(
            f"this process is already rank {dist.get_rank()} of {dist.get_world_size()}, "
            f"not rank {rank} of {world_size}"
        )
    return init_device_mesh(device.type, (world_size,), mesh_dim_names=("dp",))


def all_reduce_sum(values: list[float] | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Element-wise sum over ranks of a small vector (float64, so counts stay exact)."""
    tensor = torch.as_tensor(values, dtype=torch.float64).to(device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu()


def all_reduce_max(value: int, device: torch.device) -> int:
    """The maximum of an integer over ranks (how many micro-batches every rank must run)."""
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def destroy_train_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
