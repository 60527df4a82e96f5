"""The training loop (``miles train`` and ``miles train --async``) on a Ray cluster.

Sync: rollout k → (colocate: engines release memory, trainer onloads) → train k → save → (trainer
offloads, engines resume) → weight sync (version k+1) → log → eval.

Async (one step off-policy, as Miles's ``train_async.py``): rollout k+1 is generated while the trainer
trains on rollout k. Weights are synced every ``--update-weights-interval`` rollouts, and only once the
in-flight rollout has finished, so a rollout never mixes weight versions; the staleness of each batch
(trainer version − version that generated it) is logged as ``rollout/weight_staleness`` and bounded by
``--max-weight-staleness``.
"""

from __future__ import annotations

import json
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


def _mean_train_metrics(train_metrics: dict[str, Any]) -> dict[str, Any]:
    steps = train_metrics.pop("steps", None) or []
    row = {k: v for k, v in train_metrics.items() if isinstance(v, (int, float))}
    keys = {k for step in steps for k in step if isinstance(step[k], (int, float)) and k != "train/step"}
    for key in keys:
        values = [step[key] for step in steps if isinstance(step.get(key), (int, float))]
        row.setdefault(key, sum(values) / len(values))
    if steps and "train/step" in steps[-1]:
        row["train/step"] = steps[-1]["train/step"]
    return row


def _write_run_config(args: Any, run_dir: Path) -> None:
    config = {k: v for k, v in sorted(vars(args).items()) if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")


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
        self.rewards: list[float] = []

    # -------------------------------------------------------------------------------------------- set-up

    def setup(self) -> int:
        import ray

        from miles_core.logging.metrics_sink import MetricsSink
        from miles_core.ray.cluster import init_ray
        from miles_core.ray.placement import create_placement
        from miles_core.ray.rollout_manager import RolloutManager
        from miles_core.ray.train_group import TrainGroup

        args = self.args
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if args.num_rollout is None and not getattr(args, "load_debug_rollout_data", None):
            from miles_core.data.jsonl_source import derive_num_rollout

            args.num_rollout = derive_num_rollout(args)
        _write_run_config(args, self.run_dir)
        self.sink = MetricsSink(args, self.pm)
        init_ray(args)
        self.placement = create_placement(args)
        layout = self.placement.layout
        self.rollout_manager = ray.remote(RolloutManager).options(num_cpus=0).remote(args, self.placement, str(self.run_dir))
        engine_urls_ref = self.rollout_manager.start.remote()
        start_rollout_id = getattr(args, "start_rollout_id", None) or 0
        if layout.train_world_size:
            self.train_group = TrainGroup(args, self.placement)
            start_rollout_id = self.train_group.init(args)
        engine_urls = ray.get(engine_urls_ref)
        if start_rollout_id > 0:
            ray.get(self.rollout_manager.load.remote(start_rollout_id - 1))
        if self.train_group and engine_urls:
            self._sync_weights(str(start_rollout_id))  # engines serve exactly the trainer's weights from the start
        logger.info("run dir %s, %d train rank(s), %d engine(s), starting at rollout %d",
                    self.run_dir, layout.train_world_size, len(engine_urls), start_rollout_id)
        return start_rollout_id

    # ------------------------------------------------------------------------------------------- phases

    def _sync_weights(self, version: str) -> dict[str, float]:
        import ray

        start = time.perf_counter()
        urls = ray.get(self.rollout_manager.get_engine_urls.remote())
        metrics = dict(self.train_group.update_weights(urls, version) or {})
        ray.get(self.rollout_manager.set_weight_version.remote(version))
        metrics["perf/update_weights_time"] = time.perf_counter() - start
        return metrics

    def _train(self, rollout_id: int, generated: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        if self.train_group is None:
            return {}
        if self.placement.layout.colocate:
            import ray

            ray.get(self.rollout_manager.offload.remote())
            self.train_group.onload()
        metrics = _mean_train_metrics(dict(self.train_group.train(rollout_id, generated["train_data"]) or {}))
        metrics["perf/train_time"] = time.perf_counter() - start
        return metrics

    def _save(self, rollout_id: int) -> dict[str, float]:
        import ray

        if not _periodic(rollout_id, getattr(self.args, "save_interval", None), self.args.num_rollout):
            return {}
        start = time.perf_counter()
        if self.train_group is not None:
            self.train_group.save(rollout_id)
        ray.get(self.rollout_manager.save.remote(rollout_id))
        return {"perf/save_time": time.perf_counter() - start}

    def _after_train(self, rollout_id: int) -> dict[str, float]:
        """Give the devices back to the engines and push the new weights (version = rollouts trained)."""
        if self.train_group is None:
            return {}
        if self.placement.layout.colocate:
            import ray

            self.train_group.offload()
            ray.get(self.rollout_manager.onload.remote())
        return self._sync_weights(str(rollout_id + 1))

    def _eval(self, rollout_id: int, force: bool = False) -> None:
        import ray

        interval = getattr(self.args, "eval_interval", None)
        if not getattr(self.args, "eval_prompt_data", None) or not (force or _periodic(rollout_id, interval, self.args.num_rollout)):
            return
        start = time.perf_counter()
        metrics = dict(ray.get(self.rollout_manager.eval.remote(rollout_id)) or {})
        if metrics:
            metrics["perf/eval_time"] = time.perf_counter() - start
            metrics["eval/step"] = rollout_id
            self.sink.log(metrics, rollout_id)

    def _log(self, rollout_id: int, generated: dict[str, Any], *metric_parts: dict[str, Any]) -> None:
        row: dict[str, Any] = {}
        if not generated.get("suppress_default_log"):
            row.update(generated["metrics"])
        for part in metric_parts:
            row.update(part)
        row["rollout/step"] = rollout_id
        if "perf/train_time" in row or "perf/rollout_time" in row:
            row["perf/step_time"] = row.get("perf/train_time", 0.0) + row.get("perf/rollout_time", 0.0) + row.get(
                "perf/update_weights_time", 0.0)
        if isinstance(row.get("rollout/raw_reward"), (int, float)):
            self.rewards.append(float(row["rollout/raw_reward"]))
        self.sink.log(row, rollout_id)

    # --------------------------------------------------------------------------------------------- loops

    def run_sync(self, start_rollout_id: int) -> None:
        import ray

        args = self.args
        if not getattr(args, "skip_eval_before_train", False):
            self._eval(start_rollout_id, force=True)
        for rollout_id in range(start_rollout_id, args.num_rollout):
            generated = ray.get(self.rollout_manager.generate.remote(rollout_id))
            train_metrics = self._train(rollout_id, generated)
            save_metrics = self._save(rollout_id)
            sync_metrics = self._after_train(rollout_id)
            self._log(rollout_id, generated, train_metrics, save_metrics, sync_metrics)
            self._eval(rollout_id)
            if getattr(args, "debug_exit_after_rollout", None) is not None and rollout_id >= args.debug_exit_after_rollout:
                break

    def run_async(self, start_rollout_id: int) -> None:
        import ray

        args = self.args
        interval = max(int(getattr(args, "update_weights_interval", 1) or 1), 1)
        if not getattr(args, "skip_eval_before_train", False):
            self._eval(start_rollout_id, force=True)
        trained_version = start_rollout_id
        generated_with = {start_rollout_id: trained_version}
        pending = self.rollout_manager.generate.remote(start_rollout_id)
        for rollout_id in range(start_rollout_id, args.num_rollout):
            generated = ray.get(pending)
            staleness = trained_version - generated_with.pop(rollout_id)
            pending = None
            if rollout_id + 1 < args.num_rollout:  # overlap: the next rollout runs while this one trains
                pending = self.rollout_manager.generate.remote(rollout_id + 1)
                generated_with[rollout_id + 1] = trained_version
            train_metrics = self._train(rollout_id, generated)
            save_metrics = self._save(rollout_id)
            sync_metrics: dict[str, float] = {}
            if (rollout_id + 1 - start_rollout_id) % interval == 0 or rollout_id + 1 == args.num_rollout:
                if pending is not None:
                    ray.wait([pending], num_returns=1)  # never update weights in the middle of a generation
                sync_metrics = self._after_train(rollout_id)
                trained_version = rollout_id + 1
            self._log(rollout_id, generated, train_metrics, save_metrics, sync_metrics,
                      {"rollout/weight_staleness": float(staleness)})
            self._eval(rollout_id)

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


def run(args: Any, plugin_manager: Any) -> int:
    """Run ``miles train`` (``args.async_mode`` picks the overlapped loop). Returns the exit code."""
    trainer = Trainer(args, plugin_manager)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        start = trainer.setup()
        if getattr(args, "async_mode", False):
            trainer.run_async(start)
        else:
            trainer.run_sync(start)
        print(trainer.summary(), flush=True)
        return 0
    except KeyboardInterrupt:
        print("miles: interrupted; stopping engines, router and Ray", flush=True)
        return 130
    finally:
        trainer.shutdown()
        signal.signal(signal.SIGTERM, previous)
