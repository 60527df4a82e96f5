"""One rollout engine per Ray actor: the actor sits on the engine's bundle and runs the server process.

The server is whatever the selected :class:`~miles_core.plugins.types.EngineSpec` says (SGLang's
``launch_server`` on GPUs, the embedded engine elsewhere); the actor only starts it on a free port,
waits for ``/health``, and stops it. Router, rollout and weight sync talk to it over HTTP only. The
server runs under the :mod:`~miles_core.ray.fate_share` guard, so it dies with this actor even when
the actor is killed without a chance to stop it.
"""

from __future__ import annotations

import os
from typing import Any


def resolve_engine_name(args: Any, plugin_manager: Any) -> str:
    """``--rollout-engine auto`` → ``sglang`` where it can run, else ``embedded``; a named engine must be able to run."""
    registry = plugin_manager.registry("engines")
    name = getattr(args, "rollout_engine", None) or "auto"
    if name == "auto":
        if "sglang" in registry and registry.get("sglang").available() is None:
            return "sglang"
        return "embedded"
    spec = registry.get(name, flag="--rollout-engine")
    reason = spec.available()
    if reason:
        raise RuntimeError(f"--rollout-engine {name} cannot run here: {reason}")
    return name


class EngineActor:
    """Ray actor body owning one engine server process."""

    def __init__(self, args: Any, engine_index: int, engine_name: str, log_dir: str | None = None):
        from miles_core.plugins.manager import plugin_manager_from_args

        self.args = args
        self.engine_index = engine_index
        self.spec = plugin_manager_from_args(args).get("engines", engine_name, flag="--rollout-engine")
        self.log_dir = log_dir
        self.handle = None

    def start(self, gpu_ids: list[int] | None = None) -> str:
        import ray

        from miles_core.ray.servers import start_engine_server

        self.stop()
        host = "127.0.0.1" if len(ray.nodes()) <= 1 else ray.util.get_node_ip_address()
        env = {}
        if gpu_ids is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
        log_path = os.path.join(self.log_dir, f"engine-{self.engine_index}.log") if self.log_dir else None
        self.handle = start_engine_server(self.spec, self.args, self.engine_index, host, log_path=log_path, env=env)
        return self.handle.url

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            self.handle = None
