"""The rollout manager: a Ray actor that owns the left half of the loop.

It starts the router (unless ``--sglang-router-ip/port`` name an external one) and one engine actor per
engine, registers the engines with the router, builds the data source and the rollout function from
the registries, and answers ``generate(rollout_id)`` with the training batch. With
``--use-fault-tolerance`` a monitor thread health-checks every engine and restarts a dead one; a
restarted engine rejoins the router only after it has received the current weights, so no rollout ever
mixes weight versions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

logger = logging.getLogger("miles.rollout_manager")


class RolloutManager:
    def __init__(self, args: Any, placement: Any | None, run_dir: str):
        from miles_core.plugins.manager import plugin_manager_from_args
        from miles_core.ray.engine_actor import resolve_engine_name

        self.args = args
        self.placement = placement
        self.run_dir = run_dir
        self.pm = plugin_manager_from_args(args)
        self.engine_name = resolve_engine_name(args, self.pm) if placement and placement.layout.num_engines else None
        self.engines: list[Any] = []  # Ray actor handles
        self.engine_urls: list[str | None] = []
        self.pending: set[int] = set()  # restarted engines waiting for weights before joining the router
        self.router = None
        self.router_url: str | None = None
        self.weight_version = "0"
        self.restarts = 0
        self._lock = threading.RLock()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="miles-rollout-loop", daemon=True)
        self._loop_thread.start()
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.data_source = None
        self.rollout_fn = None
        self.eval_fn = None

    # ------------------------------------------------------------------------------------------ start-up

    def start(self) -> list[str]:
        """Start router and engines, then the data source and rollout function. Returns the engine URLs."""
        if self.engine_name:
            self._start_router()
            for index in range(self.placement.layout.num_engines):
                self.engines.append(self._new_engine_actor(index))
                self.engine_urls.append(None)
            import ray

            urls = ray.get([actor.start.remote(self._gpu_ids(i)) for i, actor in enumerate(self.engines)])
            for index, url in enumerate(urls):
                self.engine_urls[index] = url
                self._router_add(url)
            if getattr(self.args, "use_fault_tolerance", False):
                self._monitor = threading.Thread(target=self._monitor_engines, name="miles-engine-monitor", daemon=True)
                self._monitor.start()
        self._build_rollout()
        return [u for u in self.engine_urls if u]

    def _start_router(self) -> None:
        args = self.args
        if getattr(args, "sglang_router_ip", None) and getattr(args, "sglang_router_port", None):
            self.router_url = f"http://{args.sglang_router_ip}:{args.sglang_router_port}"
            return
        from miles_core.router.local import router_options_from_args, start_router

        self.router = start_router(log_path=f"{self.run_dir}/router.log", **router_options_from_args(args))
        self.router_url = self.router.url
        host, port = self.router_url.removeprefix("http://").rsplit(":", 1)
        args.sglang_router_ip, args.sglang_router_port = host, int(port)

    def _new_engine_actor(self, index: int) -> Any:
        import ray

        from miles_core.ray.engine_actor import EngineActor

        layout = self.placement.layout
        options: dict[str, Any] = {"num_cpus": self.placement.cpus_per_bundle * (0.5 if layout.colocate else 1.0)}
        if layout.use_gpu:
            options = {"num_cpus": 0.2, "num_gpus": 0.2}
        return (
            ray.remote(EngineActor)
            .options(scheduling_strategy=self.placement.strategy(layout.engine_first_bundle(index)), **options)
            .remote(self.args, index, self.engine_name, self.run_dir)
        )

    def _gpu_ids(self, index: int) -> list[int] | None:
        layout = self.placement.layout
        if not layout.use_gpu:
            return None
        from miles_core.ray.gpu_probe import bundle_gpu_ids

        first = layout.engine_first_bundle(index)
        return bundle_gpu_ids(self.placement, range(first, first + layout.gpus_per_engine))

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

    def generate(self, rollout_id: int) -> dict[str, Any]:
        """One training rollout: samples → filters → training batch, plus rollout metrics."""
        import ray

        from miles_core.rollout.rollout_types import RolloutFnTrainInput
        from miles_core.rollout.train_data import samples_to_train_data

        args = self.args
        start = time.perf_counter()
        if getattr(args, "load_debug_rollout_data", None):
            from miles_core.rollout.debug_data import load_debug_rollout

            groups, metrics = load_debug_rollout(args.load_debug_rollout_data, rollout_id), {}
        else:
            with self._lock:
                output = self._run(self.rollout_fn(RolloutFnTrainInput(rollout_id, self.weight_version)))
            groups, metrics = output.samples, dict(output.metrics or {})
            if getattr(args, "save_debug_rollout_data", None):
                from miles_core.rollout.debug_data import save_debug_rollout

                save_debug_rollout(args.save_debug_rollout_data, rollout_id, groups)
        rollout_time = time.perf_counter() - start
        samples = [sample for group in groups for sample in group]
        response_tokens = sum(s.response_length for s in samples)
        metrics["perf/rollout_time"] = rollout_time
        metrics["perf/rollout_tokens_per_s"] = response_tokens / rollout_time if rollout_time > 0 else 0.0
        metrics["rollout/weight_version"] = float(self.weight_version) if self.weight_version.isdigit() else 0.0
        suppress = False
        if getattr(args, "custom_rollout_log_function_path", None):
            from miles_core.plugins.path_flags import load_path_flag

            custom_log = load_path_flag(args, "custom_rollout_log_function_path")
            suppress = bool(custom_log(rollout_id, args, samples, metrics, rollout_time))
        estimator = self.pm.get("loss_estimators", args.advantage_estimator, flag="--advantage-estimator")
        train_data = samples_to_train_data(args, samples, estimator) if not args.debug_rollout_only else None
        return {
            "train_data": ray.put(train_data) if train_data is not None else None,
            "metrics": metrics,
            "suppress_default_log": suppress,
            "num_samples": len(samples),
        }

    def eval(self, rollout_id: int) -> dict[str, Any]:
        from miles_core.rollout.rollout_types import RolloutFnEvalInput

        if self.eval_fn is None or not getattr(self.args, "eval_prompt_data", None):
            return {}
        with self._lock:
            output = self._run(self.eval_fn(RolloutFnEvalInput(rollout_id, self.weight_version)))
        metrics = dict(output.metrics or {})
        if getattr(self.args, "custom_eval_rollout_log_function_path", None):
            from miles_core.plugins.path_flags import load_path_flag

            custom_log = load_path_flag(self.args, "custom_eval_rollout_log_function_path")
            if custom_log(rollout_id, self.args, output.data, metrics):
                return {}
        return metrics

    # ---------------------------------------------------------------------------------- data-source state

    def save(self, rollout_id: int) -> None:
        if self.data_source is not None:
            self.data_source.save(rollout_id)

    def load(self, rollout_id: int | None) -> None:
        if self.data_source is not None:
            self.data_source.load(rollout_id)

    # -------------------------------------------------------------------------------------------- engines

    def get_engine_urls(self) -> list[str]:
        """Every live engine, including restarted ones that still wait for weights."""
        with self._lock:
            return [u for u in self.engine_urls if u]

    def set_weight_version(self, version: str) -> None:
        """Called after a weight sync reached every engine: admit restarted engines to the router."""
        with self._lock:
            self.weight_version = version
            for index in sorted(self.pending):
                url = self.engine_urls[index]
                if url:
                    self._router_add(url)
                    logger.warning("engine %d (%s) has weights version %s and rejoined the router", index, url, version)
            self.pending.clear()

    def offload(self) -> None:
        self._engine_call_all("release_memory_occupation", {"tags": ["weights", "kv_cache"]})

    def onload(self) -> None:
        self._engine_call_all("resume_memory_occupation", {"tags": ["weights", "kv_cache"]})

    def _engine_call_all(self, endpoint: str, payload: dict[str, Any]) -> None:
        import httpx

        for url in self.get_engine_urls():
            response = httpx.post(f"{url}/{endpoint}", json=payload, timeout=120)
            response.raise_for_status()

    def _router_add(self, url: str) -> None:
        import httpx

        response = httpx.post(f"{self.router_url}/add_worker", params={"url": url}, timeout=30)
        response.raise_for_status()

    def _router_remove(self, url: str) -> None:
        import httpx

        try:
            httpx.post(f"{self.router_url}/remove_worker", params={"url": url}, timeout=10)
        except httpx.HTTPError:
            pass  # the router evicts an unreachable worker by itself

    def _monitor_engines(self) -> None:
        """Health-check every engine (``--rollout-health-check-*``); restart the dead ones."""
        import httpx

        args = self.args
        self._monitor_stop.wait(float(getattr(args, "rollout_health_check_first_wait", 0) or 0))
        interval = float(getattr(args, "rollout_health_check_interval", 30) or 30)
        timeout = float(getattr(args, "rollout_health_check_timeout", 30) or 30)
        while not self._monitor_stop.wait(interval):
            for index, url in enumerate(list(self.engine_urls)):
                if url is None or index in self.pending:
                    continue
                try:
                    httpx.get(f"{url}/health", timeout=timeout).raise_for_status()
                except httpx.HTTPError as exc:
                    logger.warning("engine %d (%s) failed its health check (%s); restarting it", index, url, exc)
                    self._restart_engine(index)

    def _restart_engine(self, index: int) -> None:
        import ray

        with self._lock:
            old_url = self.engine_urls[index]
            self._router_remove(old_url)
            try:
                ray.get(self.engines[index].stop.remote(), timeout=30)
            except Exception:  # the actor itself may be gone
                ray.kill(self.engines[index])
                self.engines[index] = self._new_engine_actor(index)
            url = ray.get(self.engines[index].start.remote(self._gpu_ids(index)))
            self.engine_urls[index] = url
            self.restarts += 1
            if self.weight_version == "0":
                self._router_add(url)  # nothing trained yet: the checkpoint's weights are current
            else:
                self.pending.add(index)

    def engine_restarts(self) -> int:
        return self.restarts

    def kill_engine_for_test(self, index: int) -> int:
        """Kill engine ``index``'s server process (fault-tolerance tests and drills); returns its pid."""
        import os
        import signal

        import ray

        pid = ray.get(self.engines[index].pid.remote())
        os.kill(pid, signal.SIGKILL)
        return pid

    # ------------------------------------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        import ray

        self._monitor_stop.set()
        for actor in self.engines:
            try:
                ray.get(actor.stop.remote(), timeout=30)
            except Exception as exc:
                logger.warning("could not stop an engine cleanly: %s", exc)
        if self.router is not None:
            self.router.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
