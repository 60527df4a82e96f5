"""The rollout manager: a Ray actor that owns the left half of the loop.

It starts the router (unless ``--sglang-router-ip/port`` name an external one) and the engines (an
:class:`~miles_core.ray.engine_fleet.EngineFleet`), builds the data source and the rollout function
from the registries, and answers ``generate(rollout_id)`` with the training batch and the rollout
metrics. With ``--use-fault-tolerance`` the fleet health-checks the engines and restarts dead ones;
a restarted engine rejoins the router only once it has the current weights.

``--load-debug-rollout-data`` replaces generation by the saved rollouts (no engine, no router);
``--save-debug-rollout-data`` writes every generated rollout before it becomes a training batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

logger = logging.getLogger("miles.rollout_manager")


def oldest_weight_version(groups: list[list[Any]]) -> float | None:
    """The oldest weight version any token of the rollout was generated with (``None``: not reported)."""
    versions = []
    for group in groups:
        for sample in group:
            for version in getattr(sample, "weight_versions", None) or []:
                try:
                    versions.append(float(version))
                except (TypeError, ValueError):
                    continue
    return min(versions) if versions else None


class RolloutManager:
    def __init__(self, args: Any, placement: Any | None, run_dir: str):
        from miles_core.plugins.manager import plugin_manager_from_args
        from miles_core.ray.engine_actor import resolve_engine_name

        self.args = args
        self.placement = placement
        self.run_dir = run_dir
        self.pm = plugin_manager_from_args(args)
        num_engines = placement.layout.num_engines if placement is not None else 0
        self.engine_name = resolve_engine_name(args, self.pm) if num_engines else None
        self.fleet = None
        self.router = None
        self.router_url: str | None = None
        self.weight_version = "0"
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="miles-rollout-loop", daemon=True)
        self._loop_thread.start()
        self.data_source = None
        self.rollout_fn = None
        self.eval_fn = None
        self._data_states: dict[int, Any] = {}  # data-source state right after each recent rollout

    # ------------------------------------------------------------------------------------------ start-up

    def start(self) -> list[str]:
        """Start router and engines, then the data source and rollout function. Returns the engine URLs."""
        urls: list[str] = []
        if self.engine_name:
            from miles_core.ray.engine_fleet import EngineFleet

            self._start_router()
            self.fleet = EngineFleet(self.args, self.placement, self.engine_name, self.run_dir, self.router_url)
            urls = self.fleet.start(self.placement.layout.num_engines)
            if getattr(self.args, "use_fault_tolerance", False):
                self.fleet.start_monitor()
        self._build_rollout()
        return urls

    def _start_router(self) -> None:
        args = self.args
        if getattr(args, "sglang_router_ip", None) and getattr(args, "sglang_router_port", None):
            self.router_url = f"http://{args.sglang_router_ip}:{args.sglang_router_port}"
            return
        from miles_core.ray.servers import start_router_server

        self.router = start_router_server(args, log_path=f"{self.run_dir}/router.log")
        self.router_url = self.router.url
        host, port = self.router_url.removeprefix("http://").rsplit(":", 1)
        args.sglang_router_ip, args.sglang_router_port = host, int(port)

    def _build_rollout(self) -> None:
        from miles_core.rollout.rollout_types import RolloutFnConstructorInput

        args = self.args
        if getattr(args, "load_debug_rollout_data", None):
            return
        spec = self.pm.get("data_sources", args.data_source, flag="--data-source")
        self.data_source = spec.factory(args)
        rollout_spec = self.pm.get("rollout_functions", args.rollout_function, flag="--rollout-function")
        self.rollout_fn = rollout_spec.factory(RolloutFnConstructorInput(args, self.data_source, self.pm))
        self.eval_fn = self.rollout_fn

    # ------------------------------------------------------------------------------------------ rollouts

    def _run(self, value: Any) -> Any:
        if asyncio.iscoroutine(value):
            return asyncio.run_coroutine_threadsafe(value, self._loop).result()
        return value

    def _generate_groups(self, rollout_id: int) -> tuple[list[list[Any]], dict[str, Any]]:
        from miles_core.rollout.rollout_types import RolloutFnTrainInput

        args = self.args
        if getattr(args, "load_debug_rollout_data", None):
            from miles_core.rollout.debug_data import load_debug_rollout
            from miles_core.rollout.train_rollout import rollout_batch_metrics

            groups = load_debug_rollout(args.load_debug_rollout_data, rollout_id)
            return groups, rollout_batch_metrics(args, groups)
        output = self._run(self.rollout_fn(RolloutFnTrainInput(rollout_id, self.weight_version)))
        groups = output.samples
        self._snapshot_data_source(rollout_id)
        if getattr(args, "save_debug_rollout_data", None):
            from miles_core.rollout.debug_data import save_debug_rollout

            save_debug_rollout(args.save_debug_rollout_data, rollout_id, groups)
        return groups, dict(output.metrics or {})

    def generate(self, rollout_id: int) -> dict[str, Any]:
        """One training rollout: samples → filters → training batch, plus rollout metrics.

        Returns ``train_data`` (an object ref, ``None`` under ``--debug-rollout-only``), ``metrics`` (the
        default rollout logging, or only a custom log function's own keys when it suppressed that),
        ``run_metrics`` (always logged: ``rollout/engine_restarts``), ``suppress_default_log``,
        ``num_samples`` and ``weight_version`` (the oldest version the rollout was generated with).
        """
        import ray

        from miles_core.rollout.train_data import train_data_or_skip

        args = self.args
        start = time.perf_counter()
        groups, metrics = self._generate_groups(rollout_id)
        rollout_time = time.perf_counter() - start
        samples = [sample for group in groups for sample in group]
        response_tokens = sum(s.response_length for s in samples)
        metrics["perf/rollout_time"] = rollout_time
        metrics["perf/rollout_tokens_per_s"] = response_tokens / rollout_time if rollout_time > 0 else 0.0
        metrics["rollout/num_samples"] = float(len(samples))
        run_metrics: dict[str, float] = {}  # bookkeeping of the run, logged even when a custom log suppresses
        if self.fleet is not None and getattr(args, "use_fault_tolerance", False):
            run_metrics["rollout/engine_restarts"] = float(self.fleet.restarts)
        version = oldest_weight_version(groups)
        if version is None:
            version = float(self.weight_version) if self.weight_version.isdigit() else 0.0
        metrics["rollout/weight_version"] = version
        suppress = self._custom_log(rollout_id, samples, metrics, rollout_time)
        train_data = None
        if not args.debug_rollout_only:
            estimator = self.pm.get("loss_estimators", args.advantage_estimator, flag="--advantage-estimator")
            batch = train_data_or_skip(args, samples, estimator, rollout_id)
            if batch is None:
                run_metrics["rollout/skipped_train_step"] = 1.0
            else:
                train_data = ray.put(batch)
        return {
            "train_data": train_data,
            "metrics": metrics,
            "run_metrics": run_metrics,
            "suppress_default_log": suppress,
            "num_samples": len(samples),
            "weight_version": version,
        }

    def _custom_log(self, rollout_id: int, samples: list[Any], metrics: dict[str, Any], rollout_time: float) -> bool:
        """``--custom-rollout-log-function-path``: ``f(rollout_id, args, samples, metrics, rollout_time) -> bool``.

        Returning ``True`` suppresses the default rollout logging (Miles's semantics): only the keys the
        function added to ``metrics`` are logged from this rollout manager.
        """
        if not getattr(self.args, "custom_rollout_log_function_path", None):
            return False
        from miles_core.plugins.path_flags import load_path_flag

        custom_log = load_path_flag(self.args, "custom_rollout_log_function_path")
        before = set(metrics)
        if not custom_log(rollout_id, self.args, samples, metrics, rollout_time):
            return False
        for key in before:
            metrics.pop(key, None)
        return True

    def eval(self, rollout_id: int) -> dict[str, Any]:
        from miles_core.rollout.rollout_types import RolloutFnEvalInput

        if self.eval_fn is None or not getattr(self.args, "eval_prompt_data", None):
            return {}
        output = self._run(self.eval_fn(RolloutFnEvalInput(rollout_id, self.weight_version)))
        metrics = dict(output.metrics or {})
        if getattr(self.args, "custom_eval_rollout_log_function_path", None):
            from miles_core.plugins.path_flags import load_path_flag

            custom_log = load_path_flag(self.args, "custom_eval_rollout_log_function_path")
            before = set(metrics)
            if custom_log(rollout_id, self.args, output.data, metrics):
                return {key: value for key, value in metrics.items() if key not in before}
        return metrics

    # ---------------------------------------------------------------------------------- data-source state

    def _snapshot_data_source(self, rollout_id: int) -> None:
        """Keep the data source's state as it is after ``rollout_id`` (when it can give one).

        In the async loop rollout k+1 is generated before rollout k is saved; saving the live state
        would make a run resumed from checkpoint k skip rollout k+1's prompts.
        """
        if hasattr(self.data_source, "state_dict") and hasattr(self.data_source, "load_state_dict"):
            self._data_states[rollout_id] = self.data_source.state_dict()
            for old in [k for k in self._data_states if k < rollout_id - 4]:
                del self._data_states[old]

    def save(self, rollout_id: int) -> None:
        """Save the data source's state after ``rollout_id`` (not a later rollout's, see above)."""
        if self.data_source is None:
            return
        snapshot = self._data_states.get(rollout_id)
        if snapshot is None:
            self.data_source.save(rollout_id)
            return
        current = self.data_source.state_dict()
        self.data_source.load_state_dict(snapshot)
        try:
            self.data_source.save(rollout_id)
        finally:
            self.data_source.load_state_dict(current)

    def load(self, rollout_id: int | None) -> None:
        if self.data_source is not None:
            self.data_source.load(rollout_id)

    # -------------------------------------------------------------------------------------------- engines

    def get_engine_urls(self) -> list[str]:
        """Every live engine, including restarted ones that still wait for weights."""
        return self.fleet.urls() if self.fleet is not None else []

    def prepare_weight_sync(self) -> list[str]:
        """The engines the next weight sync must reach; with fault tolerance, dead ones are restarted first.

        Health checks pause until :meth:`set_weight_version` (an engine loading weights may answer late).
        """
        if self.fleet is None:
            return []
        urls = self.fleet.recover() if getattr(self.args, "use_fault_tolerance", False) else self.fleet.urls()
        self.fleet.pause()
        return urls

    def set_weight_version(self, version: str, synced_urls: list[str] | None = None,
                           weights_are_checkpoint: bool = False) -> None:
        """A weight sync reached ``synced_urls``: restarted engines among them rejoin the router."""
        self.weight_version = str(version)
        if self.fleet is not None:
            self.fleet.admit(list(synced_urls or []), weights_are_checkpoint=weights_are_checkpoint)
            self.fleet.resume()

    def offload(self) -> None:
        """Colocated: the engines give their memory to the trainer (health checks pause meanwhile)."""
        if self.fleet is not None:
            self.fleet.pause()
        self._engine_call_all("release_memory_occupation", {"tags": ["weights", "kv_cache"]})

    def onload(self) -> None:
        self._engine_call_all("resume_memory_occupation", {"tags": ["weights", "kv_cache"]})
        if self.fleet is not None:
            self.fleet.resume()

    def _engine_call_all(self, endpoint: str, payload: dict[str, Any]) -> None:
        import httpx

        for url in self.get_engine_urls():
            response = httpx.post(f"{url}/{endpoint}", json=payload, timeout=120, trust_env=False)
            response.raise_for_status()

    # ------------------------------------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        if self.fleet is not None:
            self.fleet.shutdown()
        if self.router is not None:
            self.router.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
