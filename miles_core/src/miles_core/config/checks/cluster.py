"""Cluster and parallelism: colocation, offload, engine sizes, model-parallel sizes vs. the backend."""

from __future__ import annotations

import argparse

from miles_core.config.errors import ConfigError
from miles_core.config.notices import warn

MEGATRON_ONLY_SIZES = (
    ("tensor_model_parallel_size", "--tensor-model-parallel-size"),
    ("pipeline_model_parallel_size", "--pipeline-model-parallel-size"),
    ("expert_model_parallel_size", "--expert-model-parallel-size"),
    ("expert_tensor_parallel_size", "--expert-tensor-parallel-size"),
    ("context_parallel_size", "--context-parallel-size"),
)


def actor_world_size(args: argparse.Namespace) -> int:
    return args.actor_num_nodes * args.actor_num_gpus_per_node


def check_colocate_and_offload(args: argparse.Namespace, passed: set[str]) -> None:
    """``--colocate``/``--offload`` switch both offloads on unless negated; colocate reuses the actor's GPUs."""
    implied = args.colocate or args.offload
    for dest in ("offload_train", "offload_rollout"):
        if getattr(args, dest) is None:
            setattr(args, dest, bool(implied))
    if args.colocate:
        if "rollout_num_gpus" in passed and args.rollout_num_gpus != actor_world_size(args):
            warn(f"--rollout-num-gpus {args.rollout_num_gpus} is ignored with --colocate: the engines share the "
                 f"actor's {actor_world_size(args)} GPUs")
        args.rollout_num_gpus = actor_world_size(args)
        if args.rollout_num_gpus % args.rollout_num_gpus_per_engine:
            raise ConfigError(
                f"--colocate puts the engines on the actor's {args.rollout_num_gpus} GPUs (--actor-num-nodes "
                f"{args.actor_num_nodes} × --actor-num-gpus-per-node {args.actor_num_gpus_per_node}), which is not a "
                f"multiple of --rollout-num-gpus-per-engine {args.rollout_num_gpus_per_engine}"
            )
    elif args.rollout_num_gpus is not None and args.rollout_num_gpus % args.rollout_num_gpus_per_engine:
        raise ConfigError(
            f"--rollout-num-gpus {args.rollout_num_gpus} is not a multiple of --rollout-num-gpus-per-engine "
            f"{args.rollout_num_gpus_per_engine} (each engine takes that many GPUs)"
        )


def check_parallelism(args: argparse.Namespace, passed: set[str]) -> None:
    """Model-parallel sizes must fit the actor's GPUs, and the global batch must split over data parallel."""
    if args.use_dynamic_batch_size and not args.max_tokens_per_gpu:
        raise ConfigError("--use-dynamic-batch-size needs --max-tokens-per-gpu (the token budget per micro-batch "
                          "per GPU; start with --rollout-max-response-len / --context-parallel-size)")
    if args.log_probs_max_tokens_per_gpu is None:
        args.log_probs_max_tokens_per_gpu = args.max_tokens_per_gpu
    if args.sequence_parallel and args.tensor_model_parallel_size == 1:
        raise ConfigError("--sequence-parallel needs --tensor-model-parallel-size > 1")
    if args.debug_rollout_only:
        return
    if args.train_backend == "fsdp":
        for dest, flag in MEGATRON_ONLY_SIZES:
            if getattr(args, dest) != 1:
                raise ConfigError(
                    f"{flag} {getattr(args, dest)} needs --train-backend megatron; the fsdp backend shards "
                    f"data-parallel only (drop {flag}, or use the megatron backend)"
                )
        if args.sequence_parallel:
            raise ConfigError("--sequence-parallel needs --train-backend megatron")
    world = actor_world_size(args)
    model_parallel = (args.tensor_model_parallel_size * args.pipeline_model_parallel_size
                      * args.context_parallel_size)
    if world % model_parallel:
        raise ConfigError(
            f"the actor's {world} GPUs (--actor-num-nodes × --actor-num-gpus-per-node) are not a multiple of "
            f"--tensor-model-parallel-size × --pipeline-model-parallel-size × --context-parallel-size = {model_parallel}"
        )
    data_parallel = world // model_parallel
    if args.global_batch_size % data_parallel:
        raise ConfigError(
            f"--global-batch-size {args.global_batch_size} does not split over the {data_parallel} data-parallel "
            f"ranks ({world} actor GPUs / model-parallel size {model_parallel}); make it a multiple of {data_parallel}"
        )
