"""Checkpoints of a sharded model: save, find, resume — Miles's FSDP layout.

::

    {save}/latest_checkpointed_iteration.txt      "3"  (written last: a torn save is never "latest")
    {save}/iter_0000003/model/                    torch.distributed.checkpoint (DCP), sharded
    {save}/iter_0000003/optimizer/                DCP, keyed by parameter name
    {save}/iter_0000003/lr_scheduler/             DCP
    {save}/iter_0000003/rng.pt                    every rank's torch/CUDA/python/numpy RNG state
    {save}/iter_0000003/meta.json                 iteration, rollout_id, next_rollout_id, global_step, ...

The iteration number is ``rollout_id + 1`` (the rollout just trained), so resuming continues at the
iteration number. DCP stores each rank's shard with its global offsets and re-shards on load, so a
checkpoint written by N ranks loads on M ranks. ``--no-load-optim`` keeps a fresh optimizer (and LR
schedule), ``--no-load-rng`` fresh random states; ``--ckpt-step`` picks an iteration other than the
latest.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn

from miles_core.training.sharding import reshard

__all__ = [
    "TRACKER_FILE",
    "LoadedCheckpoint",
    "iteration_dir",
    "find_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_weights",
]

logger = logging.getLogger(__name__)

TRACKER_FILE = "latest_checkpointed_iteration.txt"


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` restored."""

    path: Path
    rollout_id: int
    next_rollout_id: int
    global_step: int
    meta: dict[str, Any]


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def iteration_dir(root: str | Path, rollout_id: int) -> Path:
    """``{root}/iter_{rollout_id + 1:07d}``."""
    return Path(root) / f"iter_{rollout_id + 1:07d}"


def find_checkpoint(root: str | Path | None, ckpt_step: int | None = None) -> Path | None:
    """The iteration directory to resume from, or ``None`` when ``root`` holds no checkpoint yet.

    :param ckpt_step: an iteration number (``--ckpt-step``) instead of the tracker file's.
    """
    if not root:
        return None
    root = Path(root)
    if ckpt_step is not None:
        path = root / f"iter_{int(ckpt_step):07d}"
        if not (path / "meta.json").is_file():
            raise FileNotFoundError(f"--ckpt-step {ckpt_step}: {path} is not a complete checkpoint")
        return path
    tracker = root / TRACKER_FILE
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    try:
        iteration = int(text)
    except ValueError:
        raise ValueError(f"{tracker} should hold an iteration number, found {text!r}") from None
    path = root / f"iter_{iteration:07d}"
    if not (path / "meta.json").is_file():
        raise FileNotFoundError(f"{tracker} names iteration {iteration} but {path} is not a complete checkpoint")
    return path


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover - numpy is always there with torch
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    root: str | Path,
    rollout_id: int,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    lr_scheduler: Any | None,
    global_step: int,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``rollout_id`` (collective: every rank calls it) and return its directory."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    path = iteration_dir(root, rollout_id)
    reshard(model)
    if _rank() == 0:
        path.mkdir(parents=True, exist_ok=True)
    _barrier()
    dcp.save({"model": get_model_state_dict(model)}, checkpoint_id=str(path / "model"))
    if optimizer is not None:
        dcp.save({"optimizer": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(path / "optimizer"))
    if lr_scheduler is not None:
        dcp.save({"lr_scheduler": lr_scheduler.state_dict()}, checkpoint_id=str(path / "lr_scheduler"))
    world = dist.get_world_size() if dist.is_initialized() else 1
    rng_states: list[Any] = [None] * world
    if dist.is_initialized():
        dist.all_gather_object(rng_states, _rng_state())
    else:
        rng_states = [_rng_state()]
    if _rank() == 0:
        torch.save({"per_rank": rng_states}, path / "rng.pt")
        meta = {
            "iteration": rollout_id + 1, "rollout_id": rollout_id, "next_rollout_id": rollout_id + 1,
            "global_step": global_step, "world_size": world, "timestamp": time.time(), **(extra_meta or {}),
        }
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
    _barrier()
    if _rank() == 0:
        tracker = Path(root) / TRACKER_FILE
        tmp = tracker.with_suffix(".tmp")
        tmp.write_text(str(rollout_id + 1))
        tmp.replace(tracker)
    _barrier()
    logger.info("saved checkpoint of rollout %d to %s", rollout_id, path)
    return path


def load_model_weights(path: str | Path, model: nn.Module) -> None:
    """Load only the model weights of the checkpoint directory ``path`` (used for ``--ref-load``)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    reshard(model)
    state = {"model": get_model_state_dict(model)}
    dcp.load(state, checkpoint_id=str(Path(path) / "model"))
    set_model_state_dict(model, state["model"])


def load_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    lr_scheduler: Any | None,
    load_optimizer: bool = True,
    load_rng: bool = True,
) -> LoadedCheckpoint:
    """Restore a checkpoint written by :func:`save_checkpoint` (collective), on any world size."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    load_model_weights(path, model)
    if load_optimizer and optimizer is not None:
        if not (path / "optimizer").is_dir():
            raise FileNotFoundError(f"{path} has no optimizer state; resume with --no-load-optim to start it fresh")
        state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
        dcp.load(state, checkpoint_id=str(path / "optimizer"))
        set_optimizer_state_dict(model, optimizer, state["optimizer"])
        if lr_scheduler is not None and (path / "lr_scheduler").is_dir():
            state = {"lr_scheduler": lr_scheduler.state_dict()}
            dcp.load(state, checkpoint_id=str(path / "lr_scheduler"))
            lr_scheduler.load_state_dict(state["lr_scheduler"])
            for group, lr in zip(optimizer.param_groups, lr_scheduler.get_last_lr(), strict=True):
                group["lr"] = lr
    if load_rng and (path / "rng.pt").is_file():
        per_rank = torch.load(path / "rng.pt", weights_only=False)["per_rank"]
        rank = _rank()
        if rank >= len(per_rank):
            logger.warning("checkpoint %s has RNG states of %d ranks; rank %d reuses rank 0's",
                           path, len(per_rank), rank)
        _set_rng_state(per_rank[rank] if rank < len(per_rank) else per_rank[0])
    logger.info("loaded checkpoint %s (rollout %d)", path, meta["rollout_id"])
    return LoadedCheckpoint(path, int(meta["rollout_id"]), int(meta["next_rollout_id"]), int(meta["global_step"]), meta)
