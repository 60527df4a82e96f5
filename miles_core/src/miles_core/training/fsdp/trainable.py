"""A trained model with its optimizer and LR schedule: the actor, or the PPO critic."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh

from miles_core.training.fsdp.model import Role, build_sharded_model
from miles_core.training.optim import WarmupDecayLR, build_lr_scheduler, build_optimizer, schedule_length

__all__ = ["Trainable", "build_trainable"]


@dataclass
class Trainable:
    """One sharded model that takes optimizer steps; ``metric_prefix`` is ``""`` or ``"critic-"``."""

    role: Role
    model: nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: WarmupDecayLR
    metric_prefix: str = ""

    def lr_metrics(self) -> dict[str, float]:
        """``train/<prefix>lr-pg_<i>``: the LR each parameter group used in the step just taken."""
        groups = self.optimizer.param_groups
        return {f"train/{self.metric_prefix}lr-pg_{i}": float(g["lr"]) for i, g in enumerate(groups)}


def build_trainable(
    args: argparse.Namespace,
    *,
    path: str,
    role: Role,
    mesh: DeviceMesh,
    device: torch.device,
    attn_implementation: str,
    lr: float,
    warmup_iters: int,
) -> Trainable:
    """Load ``path`` for ``role``, shard it, and give it an optimizer and LR schedule from the flags."""
    model = build_sharded_model(
        path, role, mesh=mesh, device=device, attn_implementation=attn_implementation,
        gradient_checkpointing=args.gradient_checkpointing, cpu_offload=args.fsdp_cpu_offload, seed=args.seed,
    )
    optimizer = build_optimizer(
        model.named_parameters(), optimizer=args.optimizer, lr=lr, weight_decay=args.weight_decay,
        adam_beta1=args.adam_beta1, adam_beta2=args.adam_beta2, adam_eps=args.adam_eps,
        sgd_momentum=args.sgd_momentum,
    )
    decay_steps = schedule_length(lr_decay_iters=args.lr_decay_iters, num_rollout=args.num_rollout,
                                  num_steps_per_rollout=args.num_steps_per_rollout, style=args.lr_decay_style)
    scheduler = build_lr_scheduler(optimizer, style=args.lr_decay_style, min_lr=args.min_lr,
                                   warmup_steps=warmup_iters, decay_steps=decay_steps)
    return Trainable(role, model, optimizer, scheduler, "critic-" if role == "critic" else "")
