"""Every flag the FSDP backend reads, with the reference default for each.

The flags themselves are defined once, in ``miles_core.config.arguments``; this table only fills in
what a namespace lacks (a test that builds ``argparse.Namespace(...)`` by hand, or an older saved
config), so the backend reads ``args.<dest>`` everywhere without ``getattr`` guesses. Defaults are
the reference's (``002_…``: Parallelism, Optimizer, Model and checkpoints) and the core flags of
``docs/internal-contracts.md``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["FSDP_FLAG_DEFAULTS", "with_fsdp_defaults"]

FSDP_FLAG_DEFAULTS: dict[str, Any] = {
    # Model and checkpoints
    "hf_checkpoint": None,
    "ref_load": None,
    "load": None,
    "save": None,
    "save_interval": None,
    "save_hf": None,
    "no_load_optim": False,
    "no_load_rng": False,
    "ckpt_step": None,
    "start_rollout_id": None,
    "seed": 1234,
    "ref_update_interval": None,
    # Batching
    "num_rollout": None,
    "num_steps_per_rollout": 1,
    "global_batch_size": None,
    "micro_batch_size": 1,
    "use_dynamic_batch_size": False,
    "max_tokens_per_gpu": None,
    "log_probs_max_tokens_per_gpu": None,
    "log_probs_chunk_size": -1,
    "balance_data": False,
    "rollout_temperature": 1.0,
    # Optimizer
    "optimizer": "adam",
    "lr": 1e-6,
    "lr_decay_style": "constant",
    "lr_warmup_iters": 0,
    "lr_decay_iters": None,
    "min_lr": 0.0,
    "weight_decay": 0.1,
    "adam_beta1": 0.9,
    "adam_beta2": 0.98,
    "adam_eps": 1e-8,
    "sgd_momentum": 0.9,
    "clip_grad": 1.0,
    "check_for_nan_in_loss_and_grad": True,
    # FSDP
    "gradient_checkpointing": False,
    "fsdp_cpu_offload": False,
    "fsdp_cpu_backend": "gloo",
    "attn_implementation": "flash_attention_2",
    "context_parallel_size": 1,
    "deterministic_mode": False,
    # Algorithm (read here to decide which models exist and how to scale the loss)
    "advantage_estimator": "grpo",
    "loss_type": "policy_loss",
    "use_kl_loss": False,
    "kl_coef": 0.0,
    "kl_loss_coef": 0.0,
    "calculate_per_token_loss": False,
    "use_rollout_logprobs": False,
    "disable_compute_advantages_and_returns": False,
    # Critic (PPO)
    "critic_load": None,
    "critic_save": None,
    "critic_lr": None,
    "critic_lr_warmup_iters": None,
    "num_critic_only_steps": 0,
    # Colocation, weight sync
    "colocate": False,
    "offload_train": False,
    "update_weight_buffer_size": 536870912,
    "update_weight_transfer_mode": "auto",
    "rollout_num_gpus_per_engine": 1,
    # Profiling
    "use_pytorch_profiler": False,
    "profile_step_start": 10,
    "profile_step_end": 12,
    "profile_target": ["train_overall"],
    "memory_snapshot_path": "snapshot.pickle",
    "run_dir": None,
    # Plugins
    "plugin_selection": None,
}


def with_fsdp_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` where every flag the FSDP backend reads exists (missing ones get defaults)."""
    filled = argparse.Namespace(**vars(args))
    for dest, default in FSDP_FLAG_DEFAULTS.items():
        if not hasattr(filled, dest):
            setattr(filled, dest, list(default) if isinstance(default, list) else default)
    if filled.hf_checkpoint is None:
        raise ValueError("the FSDP backend needs --hf-checkpoint (the HF model directory it trains)")
    if filled.context_parallel_size != 1:
        raise ValueError("the FSDP backend has no context parallelism: drop --context-parallel-size")
    if filled.use_dynamic_batch_size and not filled.max_tokens_per_gpu:
        raise ValueError("--use-dynamic-batch-size needs --max-tokens-per-gpu (the token budget per micro-batch)")
    return filled
