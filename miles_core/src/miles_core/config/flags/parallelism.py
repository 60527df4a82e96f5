"""Parallelism and memory: model parallel sizes, micro-batching, recomputation, FSDP options.

The Megatron flags here are defined by Miles itself (megatron-core ships no argument parser); the fsdp
backend accepts only data parallelism (and --context-parallel-size), which validation checks.
"""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Parallelism")
    group.add_argument("--tensor-model-parallel-size", type=positive_int, default=1, metavar="N", help="TP (megatron).")
    group.add_argument("--pipeline-model-parallel-size", type=positive_int, default=1, metavar="N", help="PP (megatron).")
    group.add_argument("--context-parallel-size", type=positive_int, default=1, metavar="N",
                       help="CP: spread one sample over N ranks.")
    group.add_argument("--expert-model-parallel-size", type=positive_int, default=1, metavar="N", help="EP (MoE, megatron).")
    group.add_argument("--expert-tensor-parallel-size", type=positive_int, default=1, metavar="N",
                       help="TP within experts (megatron).")
    group.add_argument("--sequence-parallel", action="store_true", help="Megatron sequence parallel (needs TP > 1).")
    group.add_argument("--use-dynamic-batch-size", action="store_true",
                       help="Pack variable-length samples into micro-batches of up to --max-tokens-per-gpu tokens.")
    group.add_argument("--max-tokens-per-gpu", type=positive_int, default=None, metavar="TOKENS",
                       help="Token budget per micro-batch per GPU; required with --use-dynamic-batch-size. "
                            "Start with rollout_max_response_len / context_parallel_size.")
    group.add_argument("--log-probs-max-tokens-per-gpu", type=positive_int, default=None, metavar="TOKENS",
                       help="Token budget of the forward-only log-prob passes. Unset: --max-tokens-per-gpu.")
    group.add_argument("--micro-batch-size", type=positive_int, default=1, metavar="N",
                       help="Samples per micro-batch (ignored with --use-dynamic-batch-size).")
    group.add_argument("--recompute-granularity", choices=("full", "selective"), default=None,
                       help="Activation recomputation (megatron). Unset: megatron's default (none).")
    group.add_argument("--recompute-method", choices=("uniform", "block"), default=None,
                       help="How layers are grouped for full recomputation (megatron). Unset: megatron's default.")
    group.add_argument("--recompute-num-layers", type=non_negative_int, default=None, metavar="N",
                       help="Layers per recompute chunk (megatron). Unset: megatron's default.")
    group.add_argument("--gradient-checkpointing", action="store_true",
                       help="FSDP equivalent of the recompute flags.")
    group.add_argument("--fsdp-cpu-offload", action="store_true",
                       help="FSDP: offload parameters, gradients and optimizer state to CPU.")
    group.add_argument("--fsdp-cpu-backend", default="gloo", metavar="BACKEND",
                       help="FSDP: torch.distributed backend for the CPU side of hybrid offload.")
    group.add_argument("--attn-implementation", choices=("flash_attention_2", "sdpa", "eager"),
                       default="flash_attention_2",
                       help="FSDP only: the transformers attention implementation (machines without "
                            "flash-attn fall back to sdpa).")
