"""Cluster: how many nodes and GPUs the actor and the rollout engines get, and whether they share them."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Cluster",
        "On a machine without GPUs each 'GPU' below becomes a CPU bundle of the Ray placement group.",
    )
    group.add_argument("--actor-num-nodes", type=positive_int, default=1, help="Total nodes for actor training.")
    group.add_argument("--actor-num-gpus-per-node", type=positive_int, default=8, help="GPUs per actor node.")
    group.add_argument(
        "--rollout-num-gpus", type=positive_int, default=None,
        help="GPUs for the rollout engines. Derived when unset: the actor's GPUs under --colocate, otherwise "
             "as many as the actor has (one engine on a CPU machine). Ignored under --colocate.",
    )
    group.add_argument(
        "--rollout-num-gpus-per-engine", type=positive_int, default=1,
        help="GPUs of each rollout engine (its tensor-parallel size; --sglang-tp-size follows it).",
    )
    group.add_argument(
        "--colocate", action="store_true",
        help="Share GPUs between actor and rollout. Implies --offload-train, --offload-rollout (unless negated "
             "with --no-offload-*) and --sglang-disable-piecewise-cuda-graph; --rollout-num-gpus is ignored.",
    )
    group.add_argument("--num-gpus-per-node", type=positive_int, default=8,
                       help="GPUs per node of the cluster (used to lay out multi-node runs).")
    group.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="Join this Ray cluster (e.g. 'auto' or 'ray://host:10001'). Unset: start a local one.")
    group.add_argument("--offload", action="store_true", help="Shorthand for --offload-train --offload-rollout.")
    group.add_argument(
        "--offload-train", action=argparse.BooleanOptionalAction, default=None,
        help="Move the actor's weights and optimizer state off the GPU while the engines generate. "
             "Unset: on with --colocate or --offload, else off.",
    )
    group.add_argument(
        "--offload-rollout", action=argparse.BooleanOptionalAction, default=None,
        help="Release the engines' GPU memory (weights, KV cache) while the actor trains. "
             "Unset: on with --colocate or --offload, else off.",
    )
