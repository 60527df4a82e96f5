"""The train-actor protocol: what the training loop calls on every rank of a train backend.

A ``--train-backend`` plugin registers a :class:`~miles_core.plugins.types.TrainBackendSpec` whose
``actor_class`` names a class implementing :class:`TrainActor`. The loop wraps that class in one Ray
actor per rank and calls, in order: ``init`` once, then per rollout ``train`` → (``save``) →
``update_weights``, with ``offload``/``onload`` around generation when ``--colocate`` shares devices.

Every method is called on **every rank** with the same arguments (collective operations happen
inside); results that only make sense once (metrics, the next rollout id) are identical on all ranks.
Keeping the protocol this small is what lets the loop drive FSDP and Megatron alike.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol, runtime_checkable

__all__ = ["TrainActor", "TrainData", "TrainResult"]

#: One rollout batch as ``miles_core.rollout.train_data.samples_to_train_data`` builds it: a dict of
#: per-sample lists (``tokens``, ``response_lengths``, ``loss_masks``, ``rewards``, ``raw_reward``,
#: ``rollout_log_probs``, ...). The *whole* batch is given to every rank; each rank takes its share.
TrainData = dict[str, list[Any]]

#: What ``train`` returns: ``{"steps": list[dict[str, float]], "rollout": dict[str, float],
#: "perf": dict[str, float]}`` (see :meth:`TrainActor.train`).
TrainResult = dict[str, Any]


@runtime_checkable
class TrainActor(Protocol):
    """One rank of a train backend. Constructed as ``cls(args, rank, world_size)``."""

    def init(self, args: argparse.Namespace, rank: int, world_size: int, master_addr: str, master_port: int) -> int:
        """Join the process group, build model/optimizer, load ``--load`` if given.

        :return: the next rollout id to train (0 for a fresh run; the saved id + 1 after ``--load``,
            or ``--start-rollout-id`` when set).
        """
        ...

    def train(self, rollout_id: int, train_data: TrainData) -> TrainResult:
        """Compute log-probs (actor, reference, critic values), advantages, and run the optimizer steps.

        :return: ``{"steps": [...], "rollout": {...}, "perf": {...}}``: one row per optimizer step
            (``train/loss``, ``train/grad_norm``, ``train/lr-pg_0``, ``train/critic-value_loss``, ... and
            ``train/step`` = ``rollout_id × num_steps_per_rollout + step``, the row's x-axis); the
            train-side batch statistics (``rollout/log_probs``, ``rollout/advantages``, ...); and the
            timers (``perf/log_probs_time``, ``perf/actor_train_time``, ``perf/actor_train_tok_per_s``,
            ...), logged against the rollout id. Names carry their namespace.
        """
        ...

    def update_weights(self, engine_urls: list[str], weight_version: str) -> dict[str, float]:
        """Push the current weights to every engine and set their ``weight_version``.

        Raises when an engine does not report ``weight_version`` afterwards (the error names it).
        :return: perf metrics of the transfer (``perf/update_weights_time``, bytes, mode).
        """
        ...

    def save(self, rollout_id: int) -> str:
        """Write a checkpoint of ``rollout_id`` under ``--save`` (and ``--save-hf`` when set).

        :return: the checkpoint directory.
        """
        ...

    def offload(self) -> None:
        """Move model and optimizer state off the accelerator (colocated generation needs the memory)."""
        ...

    def onload(self) -> None:
        """Bring model and optimizer state back after :meth:`offload`."""
        ...

    def export_hf(self, path: str) -> str:
        """Write the current actor weights as an HF directory (``from_pretrained``-loadable)."""
        ...
