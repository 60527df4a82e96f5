"""Move a sharded model and its optimizer state off the GPU and back (``--colocate``, ``--offload-train``).

While colocated engines generate, the trainer's parameters, gradients and Adam moments would hold GPU
memory the KV cache needs. ``offload`` moves them to host memory and empties the CUDA cache; ``onload``
brings them back before the next train step. On CPU ranks, and with ``--fsdp-cpu-offload`` (the state
already lives in host memory), both are no-ops.
"""

from __future__ import annotations

import gc
import logging

import torch
from torch import nn

__all__ = ["move_model", "move_optimizer_state", "release_cuda_cache"]

logger = logging.getLogger(__name__)


def move_model(model: nn.Module, device: torch.device) -> None:
    """Move parameters (local FSDP shards) and buffers to ``device``; gradients are dropped first."""
    for param in model.parameters():
        param.grad = None
    model.to(device)


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move every tensor of the optimizer state (Adam moments; the step count stays where it is)."""
    for state in optimizer.state.values():
        for key, value in list(state.items()):
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_cuda_cache() -> None:
    """Return freed blocks to the driver so another process (the engine) can use them."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
