"""Test helpers for the FSDP backend: flag namespaces, fixed rollout batches, and N-rank runs on gloo.

``run_ranks(fn, world_size, *args)`` starts ``world_size`` spawned processes that each call
``fn(actor_factory_args..., rank, world_size, port, *args)`` and returns their results in rank order; every
process is joined (or killed) before it returns, so no test leaves a process behind.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import socket
import traceback
from collections.abc import Callable
from typing import Any

TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_args(hf_checkpoint: str, **overrides: Any) -> argparse.Namespace:
    """A namespace with every flag the backend and the loss read, at Miles's defaults, plus overrides."""
    from miles_core.training.fsdp.flags import FSDP_FLAG_DEFAULTS
    from miles_core.training.loss import LOSS_FLAG_DEFAULTS

    values: dict[str, Any] = dict(LOSS_FLAG_DEFAULTS)
    values.update(FSDP_FLAG_DEFAULTS)
    values.update(
        hf_checkpoint=str(hf_checkpoint), attn_implementation="sdpa", lr=1e-3, weight_decay=0.0, clip_grad=1.0,
        advantage_estimator="grpo", num_rollout=4, seed=1234,
    )
    values.update(overrides)
    return argparse.Namespace(**values)


def fixed_batch(num_samples: int = 8, *, vocab: int = 100, seed: int = 0, min_len: int = 6,
                max_len: int = 24) -> dict[str, list]:
    """A rollout batch of varied lengths with GRPO-normalised rewards (groups of 4), deterministic."""
    rng = random.Random(seed)
    tokens, response_lengths, loss_masks, rewards, rollout_log_probs = [], [], [], [], []
    for i in range(num_samples):
        total = rng.randint(min_len, max_len)
        response = rng.randint(2, total - 2)
        tokens.append([rng.randrange(3, vocab) for _ in range(total)])
        response_lengths.append(response)
        mask = [1] * response
        if i % 3 == 1:
            mask[-1] = 0  # a masked-out token must not count
        loss_masks.append(mask)
        rewards.append(float(rng.choice([-1.0, -0.5, 0.5, 1.0])))
        rollout_log_probs.append([-2.0 - 0.01 * t for t in range(response)])
    return {"tokens": tokens, "response_lengths": response_lengths, "loss_masks": loss_masks, "rewards": rewards,
            "raw_reward": list(rewards), "rollout_log_probs": rollout_log_probs,
            "truncated": [0] * num_samples, "sample_indices": list(range(num_samples))}


def _child(fn: Callable, rank: int, world_size: int, port: int, queue, args: tuple) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(max(1, 2 // world_size))
    try:
        result = fn(rank, world_size, port, *args)
        buffer = io.BytesIO()  # plain bytes: tensors shared through file descriptors die with this process
        torch.save(result, buffer)
        queue.put((rank, "ok", buffer.getvalue()))
    except BaseException:  # noqa: BLE001 - the parent re-raises with the child's traceback
        queue.put((rank, "error", traceback.format_exc()))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def run_ranks(fn: Callable, world_size: int, *args: Any) -> list[Any]:
    """Run ``fn(rank, world_size, port, *args)`` on ``world_size`` spawned processes; results by rank."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_child, args=(fn, rank, world_size, port, queue, args), daemon=True)
             for rank in range(world_size)]
    for proc in procs:
        proc.start()
    results: dict[int, Any] = {}
    errors: list[str] = []
    try:
        for _ in range(world_size):
            rank, status, payload = queue.get(timeout=TIMEOUT_S)
            if status == "ok":
                import torch

                results[rank] = torch.load(io.BytesIO(payload), weights_only=False)
            else:
                errors.append(f"rank {rank}:\n{payload}")
                break
    finally:
        for proc in procs:
            proc.join(timeout=5 if errors else 30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if errors:
        raise RuntimeError("a rank failed:\n" + "\n".join(errors))
    return [results[r] for r in range(world_size)]


def new_actor(args: argparse.Namespace, rank: int, world_size: int, port: int):
    """An initialised :class:`FsdpTrainActor` (joins the gloo group on ``127.0.0.1:port``)."""
    from miles_core.training.fsdp.actor import FsdpTrainActor

    actor = FsdpTrainActor(args, rank, world_size)
    next_rollout_id = actor.init(args, rank, world_size, "127.0.0.1", port)
    return actor, next_rollout_id


def full_state(model) -> dict:
    """Every parameter as a full CPU tensor (collective over the train group)."""
    from miles_core.training.sharding import reshard

    reshard(model)
    return {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().cpu().clone()
            for name, p in model.named_parameters()}
