"""The optimizer and its learning-rate schedule, from the ``Optimizer`` flags.

- ``--optimizer adam`` is decoupled-weight-decay Adam (``torch.optim.AdamW``, betas
  ``--adam-beta1/2``, ``--adam-eps``); ``sgd`` is ``torch.optim.SGD`` with momentum ``--sgd-momentum``
  (0.9, Megatron's default). As in Megatron, biases and norm weights (every 1-D parameter) are not
  decayed: they go in a second parameter group, so metrics show ``lr-pg_0`` and ``lr-pg_1``.
- The schedule is Megatron's ``OptimizerParamScheduler`` (warmup, then constant / linear / cosine
  decay from ``--lr`` to ``--min-lr``), stepped once per optimizer step. Its length is
  ``--lr-decay-iters`` when given, else ``num_rollout × num_steps_per_rollout``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["build_optimizer", "WarmupDecayLR", "lr_at_step", "build_lr_scheduler", "schedule_length"]

DECAY_STYLES = ("constant", "linear", "cosine")


def build_optimizer(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
    *,
    optimizer: str,
    lr: float,
    weight_decay: float,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.98,
    adam_eps: float = 1e-8,
    sgd_momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """An optimizer over the trainable parameters, with 1-D parameters exempt from weight decay."""
    decay, no_decay = [], []
    for _, param in named_parameters:
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
              if g["params"]]
    if optimizer == "adam":
        return torch.optim.AdamW(groups, lr=lr, betas=(adam_beta1, adam_beta2), eps=adam_eps)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=sgd_momentum)
    raise ValueError(f"--optimizer {optimizer!r} is not supported; choose adam or sgd")


def lr_at_step(
    step: int, *, max_lr: float, min_lr: float, warmup_steps: int, decay_steps: int, style: str,
    warmup_init_lr: float = 0.0,
) -> float:
    """The learning rate after ``step`` optimizer steps (Megatron ``OptimizerParamScheduler.get_lr``).

    - warmup (``step <= warmup_steps``): linear from ``warmup_init_lr`` to ``max_lr``;
    - constant: ``max_lr``;
    - past ``decay_steps``: ``min_lr``;
    - otherwise with ``r = (step - warmup) / (decay_steps - warmup)``: linear ``coeff = 1 - r``, cosine
      ``coeff = (cos(pi r) + 1) / 2``, and ``lr = min_lr + coeff (max_lr - min_lr)``.
    """
    if style not in DECAY_STYLES:
        raise ValueError(f"--lr-decay-style {style!r} is not supported; choose one of {', '.join(DECAY_STYLES)}")
    if warmup_steps > 0 and step <= warmup_steps:
        return warmup_init_lr + (max_lr - warmup_init_lr) * step / warmup_steps
    if style == "constant":
        return max_lr
    if step > decay_steps:
        return min_lr
    span = decay_steps - warmup_steps
    ratio = (step - warmup_steps) / span if span > 0 else 1.0
    coeff = 1.0 - ratio if style == "linear" else 0.5 * (math.cos(math.pi * ratio) + 1.0)
    return min_lr + coeff * (max_lr - min_lr)


class WarmupDecayLR(LRScheduler):
    """Sets every parameter group's LR from :func:`lr_at_step`; each group's initial LR is its peak.

    ``state_dict()`` holds the step count, so a resumed run continues the same curve.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, *, min_lr: float, warmup_steps: int, decay_steps: int, style: str,
    ) -> None:
        if style not in DECAY_STYLES:
            raise ValueError(f"--lr-decay-style {style!r} is not supported; choose one of {', '.join(DECAY_STYLES)}")
        if warmup_steps < 0:
            raise ValueError(f"--lr-warmup-iters must be >= 0, got {warmup_steps}")
        self.min_lr = min_lr
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.style = style
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [
            lr_at_step(self.last_epoch, max_lr=base_lr, min_lr=min(self.min_lr, base_lr),
                       warmup_steps=self.warmup_steps, decay_steps=self.decay_steps, style=self.style)
            for base_lr in self.base_lrs
        ]


def schedule_length(*, lr_decay_iters: int | None, num_rollout: int | None, num_steps_per_rollout: int,
                    style: str) -> int:
    """How many optimizer steps the decay spans: ``--lr-decay-iters`` or ``num_rollout × steps``."""
    if lr_decay_iters:
        return int(lr_decay_iters)
    if num_rollout:
        return int(num_rollout) * int(num_steps_per_rollout)
    if style == "constant":
        return 0
    raise ValueError(
        f"--lr-decay-style {style} needs the schedule length: set --num-rollout (or --lr-decay-iters)"
    )


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, *, style: str, min_lr: float, warmup_steps: int, decay_steps: int,
) -> WarmupDecayLR:
    """The scheduler for ``optimizer`` (call ``.step()`` after each optimizer step)."""
    return WarmupDecayLR(optimizer, min_lr=min_lr, warmup_steps=warmup_steps, decay_steps=decay_steps, style=style)
