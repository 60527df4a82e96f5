"""``FsdpTrainActor``: one rank of the FSDP2 train backend (the ``fsdp`` ``--train-backend``).

What ``train(rollout_id, train_data)`` does, in Miles's order (anatomy §1.2):

1. take this rank's share of the rollout (:mod:`~miles_core.training.fsdp.rank_batch`);
2. forward-only passes: reference log-probs (``--use-kl-loss`` / ``--kl-coef``), the actor's own
   log-probs (the "old policy"), critic values (PPO) — each preceded by ``miles_before_log_prob``;
3. ``compute_advantages_and_returns`` of the loss module, and ``rollout/*`` statistics;
4. PPO: the critic's optimizer steps on the value loss;
5. the actor's ``--num-steps-per-rollout`` optimizer steps (each preceded by
   ``miles_before_train_step``) on the loss module's ``micro_batch_loss``, unless the rollout is one of
   the ``--num-critic-only-steps``;
6. ``--ref-update-interval``: copy the actor into the reference model.

It returns ``{"steps": [row per optimizer step], "rollout": {...}, "perf": {...}}`` with Miles's metric
names; every rank returns the same values.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from miles_core.training.batching import MicroBatch
from miles_core.training.checkpoint import find_checkpoint, load_checkpoint, load_model_weights, save_checkpoint
from miles_core.training.fsdp import offload as offload_ops
from miles_core.training.fsdp.distributed import all_reduce_sum, init_train_group, pick_device
from miles_core.training.fsdp.flags import with_fsdp_defaults
from miles_core.training.fsdp.forward import forward_policy, forward_values, zero_loss_pass
from miles_core.training.fsdp.model import build_sharded_model, hf_checkpoint_dtype, resolve_attn_implementation
from miles_core.training.fsdp.profiling import TrainProfiler
from miles_core.training.fsdp.rank_batch import RankBatch, build_micro_batches, select_samples, take_rank_share
from miles_core.training.fsdp.train_step import StepResult, run_optimizer_step
from miles_core.training.fsdp.trainable import Trainable, build_trainable
from miles_core.training.rollout_stats import rollout_statistics
from miles_core.training.sharding import reshard

__all__ = ["FsdpTrainActor"]

logger = logging.getLogger(__name__)

#: Shard size of ``--save-hf`` / ``export_hf`` directories (one shard is in memory at a time).
EXPORT_SHARD_BYTES = 2 * 1024**3


def _plugin_manager(args: argparse.Namespace):
    """The driver's plugin selection, rebuilt in this process (so hooks and estimators match)."""
    try:
        from miles_core.plugins.manager import plugin_manager_from_args

        return plugin_manager_from_args(args)
    except ImportError:  # plugins.path_flags not there (an older core): the selection alone
        from miles_core.plugins.manager import build_plugin_manager

        return build_plugin_manager(getattr(args, "plugin_selection", None))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


class FsdpTrainActor:
    """The train-actor protocol (``miles_core.training.actor.TrainActor``) over torch FSDP2."""

    def __init__(self, args: argparse.Namespace, rank: int, world_size: int) -> None:
        self.args = args
        self.rank = rank
        self.world_size = world_size
        self.global_step = 0
        self.skipped_steps = 0
        self._offloaded = False
        self._weight_updater = None
        self._last_train_end: float | None = None

    # ------------------------------------------------------------------------------------------ init

    def init(self, args: argparse.Namespace, rank: int, world_size: int, master_addr: str, master_port: int) -> int:
        args = with_fsdp_defaults(args)
        self.args, self.rank, self.world_size, self.master_addr = args, rank, world_size, master_addr
        _seed_everything(args.seed)
        if args.deterministic_mode:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.device = pick_device(rank)
        self.mesh = init_train_group(rank, world_size, master_addr, master_port, self.device,
                                     cpu_backend=args.fsdp_cpu_backend)
        self.pm = _plugin_manager(args)
        self.estimator = self.pm.get("loss_estimators", args.advantage_estimator, flag="--advantage-estimator")
        self.attn_implementation = resolve_attn_implementation(args.attn_implementation, self.device)

        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(args.hf_checkpoint, trust_remote_code=True)
        self.pad_token_id = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.hf_dtype = hf_checkpoint_dtype(config)

        self.actor = build_trainable(args, path=args.hf_checkpoint, role="actor", mesh=self.mesh, device=self.device,
                                     attn_implementation=self.attn_implementation, lr=args.lr,
                                     warmup_iters=args.lr_warmup_iters)
        self.ref = self._build_ref() if self.needs_ref else None
        self.critic = self._build_critic() if self.estimator.needs_critic else None
        self.profiler = TrainProfiler(args, self.rank, self.device)

        next_rollout_id = self._load(args.load, self.actor, "actor")
        if self.critic is not None:
            self._load(args.critic_load or (f"{args.load}_critic" if args.load else None), self.critic, "critic")
        if args.start_rollout_id is not None:
            next_rollout_id = int(args.start_rollout_id)
        return next_rollout_id

    @property
    def needs_ref(self) -> bool:
        return bool(self.args.use_kl_loss or self.args.kl_coef)

    def _build_ref(self):
        """The frozen reference: ``--ref-load`` (an HF directory or a Miles checkpoint) or ``--hf-checkpoint``."""
        ref_load = self.args.ref_load
        hf_dir = ref_load if ref_load and (Path(ref_load) / "config.json").is_file() else self.args.hf_checkpoint
        model = build_sharded_model(hf_dir, "ref", mesh=self.mesh, device=self.device,
                                    attn_implementation=self.attn_implementation, seed=self.args.seed)
        if ref_load and hf_dir != ref_load:
            path = find_checkpoint(ref_load) or (Path(ref_load) if (Path(ref_load) / "model").is_dir() else None)
            if path is None:
                raise FileNotFoundError(
                    f"--ref-load {ref_load}: neither an HF model directory (config.json) nor a checkpoint "
                    f"(latest_checkpointed_iteration.txt or iter_*/model)"
                )
            load_model_weights(path, model)
        return model

    def _build_critic(self) -> Trainable:
        args = self.args
        warmup = args.critic_lr_warmup_iters if args.critic_lr_warmup_iters is not None else args.lr_warmup_iters
        return build_trainable(args, path=args.hf_checkpoint, role="critic", mesh=self.mesh, device=self.device,
                               attn_implementation=self.attn_implementation, lr=args.critic_lr or args.lr,
                               warmup_iters=warmup)

    def _load(self, root: str | None, trainable: Trainable, what: str) -> int:
        path = find_checkpoint(root, self.args.ckpt_step) if root else None
        if path is None:
            if root:
                logger.info("no %s checkpoint under %s yet: starting from %s", what, root, self.args.hf_checkpoint)
            return 0
        loaded = load_checkpoint(path, model=trainable.model, optimizer=trainable.optimizer,
                                 lr_scheduler=trainable.lr_scheduler, load_optimizer=not self.args.no_load_optim,
                                 load_rng=not self.args.no_load_rng)
        if what == "actor":
            self.global_step = loaded.global_step
        return loaded.next_rollout_id

    # ----------------------------------------------------------------------------------------- train

    @contextmanager
    def _timed(self, perf: dict[str, float], name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        perf[f"perf/{name}_time"] = time.perf_counter() - start

    def train(self, rollout_id: int, train_data: dict[str, Any]) -> dict[str, Any]:
        from miles_core.training.loss import compute_advantages_and_returns

        if self._offloaded:
            self.onload()
        args = self.args
        perf: dict[str, float] = {}
        start = time.perf_counter()
        if self._last_train_end is not None:
            perf["perf/train_wait_time"] = start - self._last_train_end
        with self._timed(perf, "data_preprocess"):
            rank_batch = take_rank_share(train_data, rank=self.rank, world_size=self.world_size,
                                         num_steps=args.num_steps_per_rollout, balance=args.balance_data)
        batch = rank_batch.data
        with self.profiler.scope("train_log_probs", self.global_step):
            if self.ref is not None:
                with self._timed(perf, "ref_log_probs"):
                    batch["ref_log_probs"] = self._log_probs(self.ref, rank_batch, "ref_")
            skip_actor_pass = args.use_rollout_logprobs and not (getattr(args, "use_tis", False)
                                                                 or getattr(args, "get_mismatch_metrics", False))
            if not skip_actor_pass:
                with self._timed(perf, "log_probs"):
                    batch["log_probs"] = self._log_probs(self.actor.model, rank_batch, "")
            if self.critic is not None:
                with self._timed(perf, "values"):
                    batch["values"] = self._values(rank_batch)
        compute_advantages_and_returns(args, batch, self.estimator)
        rollout_metrics = rollout_statistics(batch, self.device)

        rows: list[dict[str, float]] = [
            {"train/step": float(rollout_id * args.num_steps_per_rollout + s)} for s in range(len(rank_batch.steps))
        ]
        if self.critic is not None:
            with self._timed(perf, "critic_train"):
                for step_id in range(len(rank_batch.steps)):
                    rows[step_id].update(self._critic_step(rank_batch, step_id))
        if rollout_id >= args.num_critic_only_steps:
            tokens = 0
            with self._timed(perf, "actor_train"):
                for step_id in range(len(rank_batch.steps)):
                    with self.profiler.scope("train_actor", self.global_step):
                        row, step_tokens = self._actor_step(rollout_id, rank_batch, step_id)
                    rows[step_id].update(row)
                    tokens += step_tokens
            total_tokens = float(all_reduce_sum([tokens], self.device)[0])
            perf["perf/actor_train_tok_per_s"] = total_tokens / max(perf["perf/actor_train_time"], 1e-9)
        if args.ref_update_interval and self.ref is not None and (rollout_id + 1) % args.ref_update_interval == 0:
            with self._timed(perf, "ref_model_update"):
                self._copy_actor_to_ref()
        perf["perf/train_time"] = time.perf_counter() - start
        self._last_train_end = time.perf_counter()
        return {"steps": rows, "rollout": rollout_metrics, "perf": perf}

    def _micro_batches(self, rank_batch: RankBatch, indices: list[int], *, forward_only: bool) -> list[MicroBatch]:
        args = self.args
        max_tokens = None
        if args.use_dynamic_batch_size:
            max_tokens = (args.log_probs_max_tokens_per_gpu or args.max_tokens_per_gpu) if forward_only \
                else args.max_tokens_per_gpu
        return build_micro_batches(rank_batch, indices, device=self.device, packed=bool(max_tokens),
                                   micro_batch_size=args.micro_batch_size, max_tokens=max_tokens,
                                   pad_token_id=self.pad_token_id)

    def compute_log_probs(self, train_data: dict[str, Any]) -> list[torch.Tensor]:
        """The actor's current log-probs of every response token of ``train_data`` (the whole batch,
        on every rank, in batch order): what an engine serving these weights must reproduce."""
        rank_batch = take_rank_share(train_data, rank=self.rank, world_size=self.world_size, num_steps=1,
                                     balance=False)
        mine = list(zip(rank_batch.global_indices, self._log_probs(self.actor.model, rank_batch, ""), strict=True))
        if dist.is_initialized() and self.world_size > 1:
            gathered: list = [None] * self.world_size
            dist.all_gather_object(gathered, mine)
            mine = [pair for part in gathered for pair in part]
        return [values for _, values in sorted(mine, key=lambda pair: pair[0])]

    @torch.no_grad()
    def _log_probs(self, model, rank_batch: RankBatch, store_prefix: str) -> list[torch.Tensor]:
        """Forward-only log-probs of every sample of this rank (float32, CPU)."""
        self.pm.hook.miles_before_log_prob(args=self.args, model=model, store_prefix=store_prefix)
        return self._forward_each_sample(model, rank_batch, lambda micro_batch: forward_policy(
            model, micro_batch, temperature=self.args.rollout_temperature,
            chunk_size=self.args.log_probs_chunk_size).log_probs)

    @torch.no_grad()
    def _values(self, rank_batch: RankBatch) -> list[torch.Tensor]:
        """The critic's values before its update (what GAE and the clipped value loss use)."""
        model = self.critic.model
        return self._forward_each_sample(model, rank_batch, lambda micro_batch: forward_values(model, micro_batch))

    def _forward_each_sample(self, model, rank_batch: RankBatch, forward) -> list[torch.Tensor]:
        """Forward-only pass over this rank's micro-batches; ``forward(micro_batch)`` gives one tensor per
        sample span, returned per sample in order (float32, CPU)."""
        model.eval()
        out: list[torch.Tensor | None] = [None] * len(rank_batch)
        for micro_batch in self._micro_batches(rank_batch, list(range(len(rank_batch))), forward_only=True):
            micro_batch = micro_batch.to(self.device)
            if micro_batch.is_empty:
                zero_loss_pass(model, micro_batch)
                continue
            for span, values in zip(micro_batch.spans, forward(micro_batch), strict=True):
                out[span.sample_index] = values.float().cpu()
        return out  # type: ignore[return-value]

    def _step_row(self, trainable: Trainable, result: StepResult, lr_metrics: dict[str, float]) -> dict[str, float]:
        prefix = f"train/{trainable.metric_prefix}"
        row = {f"{prefix}{name}": value for name, value in result.metrics.items()}
        row[f"{prefix}grad_norm"] = result.grad_norm
        row.update(lr_metrics)
        if result.skipped:
            row[f"{prefix}skipped_step"] = 1.0
        return row

    def _actor_step(self, rollout_id: int, rank_batch: RankBatch, step_id: int) -> tuple[dict[str, float], int]:
        from miles_core.training.loss import micro_batch_loss

        args, actor, batch = self.args, self.actor, rank_batch.data
        self.pm.hook.miles_before_train_step(args=args, rollout_id=rollout_id, step_id=step_id, model=actor.model,
                                            optimizer=actor.optimizer, lr_scheduler=actor.lr_scheduler)
        keep_logits = args.loss_type == "custom_loss"

        def loss_fn(micro_batch: MicroBatch):
            result = forward_policy(actor.model, micro_batch, temperature=args.rollout_temperature,
                                    chunk_size=args.log_probs_chunk_size, with_entropy=True, keep_logits=keep_logits)
            return micro_batch_loss(
                args, select_samples(batch, micro_batch.sample_indices), result.log_probs, result.entropy,
                self.estimator, global_batch_size=rank_batch.step_sizes[step_id],
                global_num_tokens=rank_batch.step_tokens[step_id], dp_size=self.world_size, logits=result.logits,
            )

        lr_metrics = actor.lr_metrics()
        result = run_optimizer_step(actor.model, actor.optimizer, actor.lr_scheduler,
                                    self._micro_batches(rank_batch, rank_batch.steps[step_id], forward_only=False),
                                    loss_fn, device=self.device, clip_grad=args.clip_grad,
                                    check_for_nan=args.check_for_nan_in_loss_and_grad)
        self.global_step += 1
        self.skipped_steps += int(result.skipped)
        row = self._step_row(actor, result, lr_metrics)
        row["train/skipped_steps_total"] = float(self.skipped_steps)
        self.profiler.step(self.global_step)
        return row, result.num_tokens

    def _critic_step(self, rank_batch: RankBatch, step_id: int) -> dict[str, float]:
        from miles_core.training.loss import value_loss

        args, critic, batch = self.args, self.critic, rank_batch.data

        def loss_fn(micro_batch: MicroBatch):
            values = forward_values(critic.model, micro_batch)
            return value_loss(args, select_samples(batch, micro_batch.sample_indices), values,
                              global_batch_size=rank_batch.step_sizes[step_id],
                              global_num_tokens=rank_batch.step_tokens[step_id], dp_size=self.world_size)

        lr_metrics = critic.lr_metrics()
        result = run_optimizer_step(critic.model, critic.optimizer, critic.lr_scheduler,
                                    self._micro_batches(rank_batch, rank_batch.steps[step_id], forward_only=False),
                                    loss_fn, device=self.device, clip_grad=args.clip_grad,
                                    check_for_nan=args.check_for_nan_in_loss_and_grad)
        return self._step_row(critic, result, lr_metrics)

    @torch.no_grad()
    def _copy_actor_to_ref(self) -> None:
        """``--ref-update-interval``: the reference takes the actor's weights, shard by shard (same layout)."""
        reshard(self.ref)
        reshard(self.actor.model)
        pairs = zip(self.ref.parameters(), self.actor.model.parameters(), strict=True)
        for ref_param, actor_param in pairs:
            ref_param.to_local().copy_(actor_param.to_local().to(ref_param.device))

    # ------------------------------------------------------------------------------- weights, saving

    def update_weights(self, engine_urls: list[str], weight_version: str) -> dict[str, float]:
        from miles_core.training.weight_sync import WeightUpdater

        args = self.args
        if self._weight_updater is None or self._weight_updater.requested_mode != args.update_weight_transfer_mode:
            self._weight_updater = WeightUpdater(
                self.actor.model, mode=args.update_weight_transfer_mode, colocate=bool(args.colocate),
                buffer_bytes=args.update_weight_buffer_size, hf_checkpoint=args.hf_checkpoint, dtype=self.hf_dtype,
                device=self.device, master_address=self.master_addr,
                ranks_per_engine=int(args.rollout_num_gpus_per_engine or 1),
                disk_root=Path(args.run_dir) / "weight_sync" if args.run_dir else None,
            )
        return self._weight_updater.update(engine_urls, weight_version)

    def save(self, rollout_id: int) -> str:
        args = self.args
        root = args.save or (str(Path(args.run_dir) / "checkpoints") if args.run_dir else None)
        if root is None:
            raise ValueError("nowhere to save: set --save (or --run-dir)")
        start = time.perf_counter()
        path = save_checkpoint(root, rollout_id, model=self.actor.model, optimizer=self.actor.optimizer,
                               lr_scheduler=self.actor.lr_scheduler, global_step=self.global_step,
                               extra_meta={"role": "actor", "hf_checkpoint": str(args.hf_checkpoint)})
        if self.critic is not None:
            save_checkpoint(args.critic_save or f"{root}_critic", rollout_id, model=self.critic.model,
                            optimizer=self.critic.optimizer, lr_scheduler=self.critic.lr_scheduler,
                            global_step=self.global_step, extra_meta={"role": "critic"})
        hf_dir = self.export_hf(str(args.save_hf).format(rollout_id=rollout_id)) if args.save_hf else None
        if self.rank == 0:
            self.pm.hook.miles_after_save(args=args, rollout_id=rollout_id, checkpoint_dir=str(path),
                                          hf_checkpoint_dir=hf_dir)
        logger.info("save of rollout %d took %.2fs", rollout_id, time.perf_counter() - start)
        return str(path)

    def export_hf(self, path: str) -> str:
        from miles_core.training.weight_sync.hf_directory import write_hf_directory
        from miles_core.training.weight_sync.hf_tensors import iter_buckets, iter_full_tensors

        if self.rank == 0:
            tensors = iter_full_tensors(self.actor.model, dtype=self.hf_dtype, device="cpu")
            write_hf_directory(iter_buckets(tensors, EXPORT_SHARD_BYTES), path,
                               source_checkpoint=self.args.hf_checkpoint)
        else:
            for _ in iter_full_tensors(self.actor.model):
                pass
        if dist.is_initialized():
            dist.barrier()
        return str(path)

    # --------------------------------------------------------------------------------------- offload

    def _offloadable(self) -> list[Trainable]:
        if self.device.type != "cuda" or self.args.fsdp_cpu_offload:
            return []
        return [t for t in (self.actor, self.critic) if t is not None]

    def offload(self) -> None:
        for trainable in self._offloadable():
            reshard(trainable.model)  # move the shards, not a root left unsharded by a log-prob pass
            offload_ops.move_model(trainable.model, torch.device("cpu"))
            offload_ops.move_optimizer_state(trainable.optimizer, torch.device("cpu"))
        offload_ops.release_cuda_cache()
        self._offloaded = True

    def onload(self) -> None:
        for trainable in self._offloadable():
            offload_ops.move_model(trainable.model, self.device)
            offload_ops.move_optimizer_state(trainable.optimizer, self.device)
        self._offloaded = False
