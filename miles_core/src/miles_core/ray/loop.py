"""The training loop (``miles train`` and ``miles train --async``) on a Ray cluster.

Sync: rollout k → (colocate: engines release memory, trainer onloads) → train k → (trainer offloads,
engines resume) → weight sync (version k+1) → log → save → eval. The row of a rollout is written
before its checkpoint (colocated: right after), so a run killed after a save has logged every rollout
it saved.

Async (one step off-policy, as Miles's ``train_async.py``): rollout k+1 is generated while the trainer
trains on rollout k. Weights are synced every ``--update-weights-interval`` rollouts, and only once the
in-flight rollout has finished, so a rollout never mixes weight versions.

Weight versions count trained rollouts: the trainer that is about to train rollout k holds version k,
and a sync after training k gives the engines version k+1. Every trained batch logs
``rollout/weight_staleness`` = k − (the oldest version its tokens were generated with): 0 in the sync
loop, at most ``--max-weight-staleness`` in the async one (a sync is forced before launching a
rollout that would exceed it).

Debug modes (anatomy §13): ``--debug-rollout-only`` starts no train ranks (no training, no weight
sync, the engines keep the checkpoint's weights); ``--debug-train-only`` / ``--load-debug-rollout-data``
start no engine and no router (the rollouts come from disk, nothing to sync).

Stopping: SIGINT and SIGTERM unwind the loop; engines, router, train ranks and Ray are stopped, and
the engine and router processes die with their Ray actors in any case (:mod:`~miles_core.ray.fate_share`).
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("miles.loop")


def _periodic(rollout_id: int, interval: int | None, num_rollout: int) -> bool:
    """True every ``interval`` rollouts and at the last one (Miles's ``should_run_periodic_action``)."""
    if not interval:
        return False
    return (rollout_id + 1) % interval == 0 or rollout_id + 1 == num_rollout


def flatten_train_metrics(train_metrics: dict[str, Any]) -> dict[str, Any]:
    """One row from a train backend's answer: the mean of each per-step metric (``steps``), the last
    ``train/step``, and the nested ``rollout``/``perf`` dicts (train-side statistics and timers)."""
    metrics = dict(train_metrics)
    steps = metrics.pop("steps", None) or []
    row: dict[str, Any] = {}
    for part in ("rollout", "perf"):
        nested = metrics.pop(part, None)
        if isinstance(nested, dict):
            row.update({k: v for k, v in nested.items() if isinstance(v, (int, float))})
    row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    keys = {k for step in steps for k in step if isinstance(step[k], (int, float)) and k != "train/step"}
    for key in sorted(keys):
        values = [step[key] for step in steps if isinstance(step.get(key), (int, float))]
        row.setdefault(key, sum(values) / len(values))
    if steps and "train/step" in steps[-1]:
        row["train/step"] = steps[-1]["train/step"]
    return row


class Trainer:
    """Owns the Ray objects of one run and drives the loop over them."""

    def __init__(self, args: Any, plugin_manager: Any):
        self.args = args
        self.pm = plugin_manager
        self.run_dir = Path(args.run_dir)
        self.placement = None
        self.rollout_manager = None
        self.train_group = None
        self.sink = None
        self.has_engines = False
        self.synced_version = 0
        self.saved: set[int] = set()
        self.carried_metrics: dict[str, float] = {}  # measured after a row was logged: go into the next
        self.rewards: list[float] = []

    # -------------------------------------------------------------------------------------------- set-up

    def setup(self) -> int:
        """Start Ray, the rollout manager, engines and train ranks; returns the first rollout id."""
        import ray

        from miles_core.logging.metrics_sink import MetricsSink
        from miles_core.ray.cluster import init_ray
        from miles_core.ray.placement import create_placement
        from miles_core.ray.rollout_manager import RolloutManager
        from miles_core.ray.run_files import count_saved_rollouts, supersede_metrics, write_run_config
        from miles_core.ray.train_group import TrainGroup

        args = self.args
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if args.num_rollout is None:
            if getattr(args, "load_debug_rollout_data", None):
                args.num_rollout = count_saved_rollouts(args.load_debug_rollout_data)
            else:
                from miles_core.data.jsonl_source import derive_num_rollout

                args.num_rollout = derive_num_rollout(args)
        write_run_config(args, self.run_dir)
        if getattr(args, "save_interval", None) and not getattr(args, "save", None):
            logger.warning("--save-interval %d without --save: no checkpoint is written (pass --save DIR)",
                           args.save_interval)
        init_ray(args)
        _install_stop_handlers()  # ray.init replaces the SIGTERM handler with its own sys.exit
        self.placement = create_placement(args)
        layout = self.placement.layout
        self.rollout_manager = ray.remote(RolloutManager).options(num_cpus=0).remote(args, self.placement, str(self.run_dir))
        engine_urls_ref = self.rollout_manager.start.remote()
        start_rollout_id = getattr(args, "start_rollout_id", None) or 0
        if layout.train_world_size:
            self.train_group = TrainGroup(args, self.placement)
            start_rollout_id = self.train_group.init(args)
        self.has_engines = bool(ray.get(engine_urls_ref))
        if start_rollout_id > 0:
            ray.get(self.rollout_manager.load.remote(start_rollout_id - 1))
            supersede_metrics(self.run_dir, start_rollout_id)
        self.sink = MetricsSink(args, self.pm)
        self.synced_version = start_rollout_id
        if self.train_group and self.has_engines:
            # the engines serve exactly the trainer's weights from the start (the checkpoint's after --load)
            resumed = bool(getattr(args, "load", None)) and start_rollout_id > 0
            self._sync_weights(start_rollout_id, weights_are_checkpoint=not resumed)
        resumed_from = f" (resumed from {args.load})" if getattr(args, "load", None) and start_rollout_id else ""
        logger.info("run dir %s, %d train rank(s), %d engine(s), starting at rollout %d%s",
                    self.run_dir, layout.train_world_size, layout.num_engines if self.has_engines else 0,
                    start_rollout_id, resumed_from)
        return start_rollout_id

    # ------------------------------------------------------------------------------------------- phases

    def _sync_weights(self, version: int, weights_are_checkpoint: bool = False) -> dict[str, float]:
        """Push the trainer's weights (``version``) to every live engine, then admit restarted ones."""
        import ray

        start = time.perf_counter()
        urls = ray.get(self.rollout_manager.prepare_weight_sync.remote())
        try:
            metrics = dict(self.train_group.update_weights(urls, str(version)) or {})
        except Exception as exc:
            if not getattr(self.args, "use_fault_tolerance", False):
                raise
            logger.warning("weight sync to version %d failed (%s); recovering the engines and trying once more",
                           version, exc)
            urls = ray.get(self.rollout_manager.prepare_weight_sync.remote())
            metrics = dict(self.train_group.update_weights(urls, str(version)) or {})
        ray.get(self.rollout_manager.set_weight_version.remote(str(version), urls, weights_are_checkpoint))
        self.synced_version = version
        metrics["perf/update_weights_time"] = time.perf_counter() - start
        return metrics

    def _train(self, rollout_id: int, generated: dict[str, Any]) -> dict[str, Any]:
        if self.train_group is None or generated["train_data"] is None:  # no trainer, or a skipped step
            return {}
        start = time.perf_counter()
        if self.placement.layout.colocate:
            import ray

            ray.get(self.rollout_manager.offload.remote())
            self.train_group.onload()
        metrics = flatten_train_metrics(dict(self.train_group.train(rollout_id, generated["train_data"]) or {}))
        metrics["perf/train_time"] = time.perf_counter() - start
        if self.has_engines:  # replayed rollouts carry the versions of the run that recorded them
            metrics["rollout/weight_staleness"] = float(rollout_id - generated["weight_version"])
        return metrics

    def _save(self, rollout_id: int) -> None:
        """Checkpoint after the rollout's row is logged, so a kill after a save never loses that row;
        the save's duration goes into the next row (``perf/save_time``). Colocated, the trainer saves
        before it offloads (in :meth:`_after_train`): a checkpoint is written from the device."""
        import ray

        if not self._save_due(rollout_id) or rollout_id in self.saved:
            return
        self.saved.add(rollout_id)
        start = time.perf_counter()
        # the data-source state first: the trainer's tracker file, written last, marks the checkpoint complete
        ray.get(self.rollout_manager.save.remote(rollout_id))
        if self.train_group is not None:
            self.train_group.save(rollout_id)
        self.carried_metrics["perf/save_time"] = time.perf_counter() - start

    def _save_due(self, rollout_id: int) -> bool:
        """With ``--save``: every ``--save-interval`` rollouts and at the last one (the plan says so)."""
        if not getattr(self.args, "save", None):
            return False
        return rollout_id + 1 == self.args.num_rollout or _periodic(
            rollout_id, getattr(self.args, "save_interval", None), self.args.num_rollout)

    def _should_sync(self, rollout_id: int, start_rollout_id: int) -> bool:
        interval = max(int(getattr(self.args, "update_weights_interval", 1) or 1), 1)
        return (rollout_id + 1 - start_rollout_id) % interval == 0 or rollout_id + 1 == self.args.num_rollout

    def _after_train(self, rollout_id: int, sync: bool) -> dict[str, float]:
        """Give the devices back to the engines and push the new weights (version = rollouts trained)."""
        if self.train_group is None or not self.has_engines:
            return {}
        if self.placement.layout.colocate:
            import ray

            self._save(rollout_id)
            self.train_group.offload()
            ray.get(self.rollout_manager.onload.remote())
        return self._sync_weights(rollout_id + 1) if sync else {}

    def _eval(self, rollout_id: int, force: bool = False) -> None:
        import ray

        interval = getattr(self.args, "eval_interval", None)
        if not self.has_engines or not getattr(self.args, "eval_prompt_data", None):
            return
        if not (force or _periodic(rollout_id, interval, self.args.num_rollout)):
            return
        start = time.perf_counter()
        metrics = dict(ray.get(self.rollout_manager.eval.remote(rollout_id)) or {})
        if metrics:
            metrics["perf/eval_time"] = time.perf_counter() - start
            metrics["eval/step"] = rollout_id
            self.sink.log(metrics, rollout_id)

    def _log(self, rollout_id: int, generated: dict[str, Any], *metric_parts: dict[str, Any]) -> None:
        row: dict[str, Any] = dict(generated["metrics"])
        row.update(generated.get("run_metrics") or {})
        row.update(self.carried_metrics)
        self.carried_metrics = {}
        for part in metric_parts:
            row.update(part)
        row["rollout/step"] = rollout_id
        if "perf/train_time" in row or "perf/rollout_time" in row:
            row["perf/step_time"] = sum(row.get(k, 0.0) for k in ("perf/train_time", "perf/rollout_time",
                                                                    "perf/update_weights_time"))
        if isinstance(row.get("rollout/raw_reward"), (int, float)):
            self.rewards.append(float(row["rollout/raw_reward"]))
        self.sink.log(row, rollout_id)

    def _exit_early(self, rollout_id: int, start_rollout_id: int) -> bool:
        limit = getattr(self.args, "debug_exit_after_rollout", None)
        return limit is not None and rollout_id + 1 - start_rollout_id >= limit

    # --------------------------------------------------------------------------------------------- loops

    def run_sync(self, start_rollout_id: int) -> None:
        import ray

        args = self.args
        if not getattr(args, "skip_eval_before_train", False):
            self._eval(start_rollout_id, force=True)
        for rollout_id in range(start_rollout_id, args.num_rollout):
            generated = ray.get(self.rollout_manager.generate.remote(rollout_id))
            train_metrics = self._train(rollout_id, generated)
            sync_metrics = self._after_train(rollout_id, self._should_sync(rollout_id, start_rollout_id))
            self._log(rollout_id, generated, train_metrics, sync_metrics)
            self._save(rollout_id)
            self._eval(rollout_id)
            if self._exit_early(rollout_id, start_rollout_id):
                break

    def run_async(self, start_rollout_id: int) -> None:
        """Rollout k+1 is generated while rollout k trains (one step off-policy, bounded staleness)."""
        import ray

        args = self.args
        max_staleness = max(int(getattr(args, "max_weight_staleness", 1) or 1), 1)
        if not getattr(args, "skip_eval_before_train", False):
            self._eval(start_rollout_id, force=True)
        pending = self.rollout_manager.generate.remote(start_rollout_id)
        for rollout_id in range(start_rollout_id, args.num_rollout):
            generated = ray.get(pending)
            pending = None
            forced_sync: dict[str, float] = {}
            last = rollout_id + 1 >= args.num_rollout or self._exit_early(rollout_id, start_rollout_id)
            if not last:
                if self.train_group is not None and rollout_id + 1 - self.synced_version > max_staleness:
                    forced_sync = self._after_train(rollout_id - 1, sync=True)  # nothing is generating now
                pending = self.rollout_manager.generate.remote(rollout_id + 1)  # overlaps the training below
            train_metrics = self._train(rollout_id, generated)
            sync = last or self._should_sync(rollout_id, start_rollout_id)
            if sync and pending is not None:
                ray.wait([pending], num_returns=1)  # never update weights in the middle of a generation
            sync_metrics = self._after_train(rollout_id, sync)
            self._log(rollout_id, generated, forced_sync, train_metrics, sync_metrics)
            self._save(rollout_id)
            self._eval(rollout_id)
            if last:
                break

    # ------------------------------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        import ray

        if self.sink is not None:
            self.sink.finish()
        if self.rollout_manager is not None:
            try:
                ray.get(self.rollout_manager.shutdown.remote(), timeout=60)
            except Exception as exc:
                logger.warning("rollout manager did not shut down cleanly: %s", exc)
            ray.kill(self.rollout_manager, no_restart=True)
        if self.train_group is not None:
            self.train_group.kill()
        if self.placement is not None:
            try:
                self.placement.remove()
            except Exception:
                pass
        from miles_core.ray.cluster import shutdown_ray

        shutdown_ray()

    def summary(self) -> str:
        if not self.rewards:
            return f"run finished; metrics in {self.run_dir / 'metrics.jsonl'}"
        return (f"raw reward {self.rewards[0]:.3f} → {self.rewards[-1]:.3f} (best {max(self.rewards):.3f}) over "
                f"{len(self.rewards)} rollouts; metrics in {self.run_dir / 'metrics.jsonl'}; "
                f"draw them with: miles plot {self.run_dir}")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_received_signals: list[str] = []  # Ray re-raises a KeyboardInterrupt of its own from ray.get: keep the name here


def _interrupt(signum: int, _frame: Any) -> None:
    _received_signals.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _install_stop_handlers() -> dict[int, Any]:
    """SIGINT and SIGTERM unwind the loop as a KeyboardInterrupt; returns the handlers they replace."""
    return {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}


def run(args: Any, plugin_manager: Any) -> int:
    """Run ``miles train`` (``args.async_mode`` picks the overlapped loop). Returns the exit code."""
    trainer = Trainer(args, plugin_manager)
    previous = _install_stop_handlers()
    try:
        start = trainer.setup()
        if getattr(args, "async_mode", False):
            trainer.run_async(start)
        else:
            trainer.run_sync(start)
        print(trainer.summary(), flush=True)
        return 0
    except KeyboardInterrupt:
        name = _received_signals[-1] if _received_signals else "SIGINT"
        print(f"miles: interrupted ({name}); stopping engines, router and Ray", flush=True)
        return 130
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        try:
            trainer.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
