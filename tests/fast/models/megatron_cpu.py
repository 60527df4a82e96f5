"""Test-only: run megatron-core 0.16 on a CPU-only torch, in one process (world size 1, gloo).

megatron-core assumes CUDA in a few hundred places (``device="cuda"``, ``torch.cuda.current_device()``,
``tensor.cuda()``, the CUDA RNG tracker). For the mapping tests we only need a model build and a forward
pass, so a ``TorchFunctionMode`` rewrites every CUDA device request to the CPU, ``torch.cuda`` gets a few
stubs, and the RNG tracker is reset to its inference variant whose ``fork()`` is a no-op (harmless with
dropout at 0). Facts from /work/shared/research/feasibility.md §3; never use this outside tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from miles_core.engines.process import free_port
from torch.overrides import TorchFunctionMode

_CPU = torch.device("cpu")


def _is_cuda_device(device: Any) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.startswith("cuda")
    return isinstance(device, int) and not isinstance(device, bool)


class _CudaToCpuMode(TorchFunctionMode):
    """Sends every tensor that megatron asks to put on a CUDA device to the CPU instead."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if _is_cuda_device(kwargs.get("device")):
            kwargs["device"] = _CPU
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.to and len(args) > 1 and _is_cuda_device(args[1]):
            args = (args[0], _CPU, *args[2:])
        return func(*args, **kwargs)


@contextlib.contextmanager
def megatron_on_cpu(seed: int = 0) -> Iterator[None]:
    """World-size-1 megatron (TP=PP=EP=1) on the CPU, undone on exit."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import random as tp_random
    from megatron.core.transformer.moe import moe_utils

    # megatron-core 0.16 names ``te_general_gemm`` in the MoE router without defining it when
    # Transformer Engine is missing (its import sits in a try block); the router then falls back to
    # torch only if the name exists and is None.
    if not hasattr(moe_utils, "te_general_gemm"):
        moe_utils.te_general_gemm = None

    saved = {name: getattr(torch.cuda, name) for name in ("current_device", "synchronize", "manual_seed")}
    torch.cuda.current_device = lambda: _CPU  # type: ignore[assignment]
    torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.manual_seed = lambda *a, **k: None  # type: ignore[assignment]
    mode = _CudaToCpuMode()
    mode.__enter__()
    started_dist = False
    try:
        if not dist.is_initialized():
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ["MASTER_PORT"] = str(free_port())
            dist.init_process_group("gloo", rank=0, world_size=1)
            started_dist = True
        parallel_state.initialize_model_parallel(1, 1)
        tp_random.initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)
        torch.manual_seed(seed)
        yield
    finally:
        parallel_state.destroy_model_parallel()
        if started_dist:
            dist.destroy_process_group()
        mode.__exit__(None, None, None)
        for name, fn in saved.items():
            setattr(torch.cuda, name, fn)
