"""One optimizer step: forward/backward over the micro-batches, clip, guard against NaN/Inf, step.

The loss module already scales each micro-batch's loss so that summing over micro-batches and
averaging over data-parallel ranks (FSDP's gradient reduce-scatter) gives the step objective; the
metrics it returns follow the same rule, so here they are summed locally, all-reduced and divided by
the number of ranks.

NaN/Inf guard (on unless ``--no-check-for-nan-in-loss-and-grad``): when the global gradient norm or
the loss is not finite, the step is **skipped** on every rank (gradients dropped, optimizer and LR
schedule untouched), the row carries ``train/skipped_step = 1``, and the caller counts it. A skipped
step is better than weights full of NaN that every engine would then serve.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from miles_core.training.batching import MicroBatch
from miles_core.training.fsdp.distributed import all_reduce_sum
from miles_core.training.fsdp.forward import zero_loss_pass

__all__ = ["StepResult", "run_optimizer_step", "global_grad_norm", "reduce_metrics"]

logger = logging.getLogger(__name__)

LossFn = Callable[[MicroBatch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class StepResult:
    """What one optimizer step did."""

    metrics: dict[str, float] = field(default_factory=dict)  # loss metrics, averaged over ranks
    grad_norm: float = 0.0
    skipped: bool = False
    num_tokens: int = 0  # real tokens this rank pushed through forward+backward


def global_grad_norm(parameters: list[nn.Parameter], max_norm: float) -> float:
    """Clip gradients to ``max_norm`` (``<= 0``: no clipping) and return the global L2 norm.

    Gradients of FSDP2 parameters are sharded DTensors; ``clip_grad_norm_`` reduces the norm over the
    mesh, and ``full_tensor`` reads the global value.
    """
    grads = [p for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm and max_norm > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def reduce_metrics(local_sums: dict[str, float], device: torch.device) -> dict[str, float]:
    """Σ over ranks / number of ranks, key by key (every rank must hold the same keys)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, sorted(local_sums))
        keys = sorted(set().union(*gathered))
    else:
        keys = sorted(local_sums)
    if not keys:
        return {}
    totals = all_reduce_sum([local_sums.get(k, 0.0) for k in keys], device)
    return {k: float(v) / world for k, v in zip(keys, totals.tolist(), strict=True)}


def run_optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler,
    micro_batches: list[MicroBatch],
    loss_fn: LossFn,
    *,
    device: torch.device,
    clip_grad: float,
    check_for_nan: bool = True,
) -> StepResult:
    """Run forward/backward over ``micro_batches`` (empty ones as zero-loss passes), then step.

    :param loss_fn: ``micro_batch -> (scaled loss, scaled metrics)`` for a non-empty micro-batch.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    num_tokens = 0
    for micro_batch in micro_batches:
        micro_batch = micro_batch.to(device)
        if micro_batch.is_empty:
            loss = zero_loss_pass(model, micro_batch)
        else:
            loss, metrics = loss_fn(micro_batch)
            for name, value in metrics.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            num_tokens += micro_batch.num_tokens
        loss.backward()
    parameters = [p for p in model.parameters() if p.requires_grad]
    grad_norm = global_grad_norm(parameters, clip_grad)
    metrics = reduce_metrics(sums, device)
    finite = math.isfinite(grad_norm) and all(math.isfinite(v) for v in metrics.values())
    if check_for_nan and not finite:
        logger.warning("skipping the optimizer step: the loss or gradient is not finite (grad_norm=%s, loss=%s)",
                       grad_norm, metrics.get("loss"))
        optimizer.zero_grad(set_to_none=True)
        return StepResult(metrics, grad_norm, skipped=True, num_tokens=num_tokens)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(metrics, grad_norm, skipped=False, num_tokens=num_tokens)
