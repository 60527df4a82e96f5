"""Start rollout engines as local processes: the embedded engine, or any ``EngineSpec`` command.

Used by the Ray rollout manager, the tests and the benchmarks::

    from miles_core.engines.local import start_engine

    with start_engine("path/to/hf-checkpoint", random_seed=0) as engine:
        print(engine.url)   # http://127.0.0.1:<free port>, already answering /health
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from miles_core.engines.process import (
    ServerProcess,
    ServerStartError,
    free_port,
    launch_server,
    port_in_use_error,
)

__all__ = ["EngineHandle", "ServerStartError", "embedded_engine_command", "launch_engine", "start_engine"]

#: A running engine: ``url``, ``pid``, ``log_path``, ``stop()``, ``kill()``; usable as a context manager.
EngineHandle = ServerProcess

_PORT_ATTEMPTS = 3


def embedded_engine_command(hf_checkpoint: str | Path, *, host: str, port: int, device: str = "auto",
                            dtype: str = "auto", random_seed: int | None = None, max_batch_size: int = 64,
                            extra_args: Sequence[str] = ()) -> list[str]:
    """The command line of one embedded engine server."""
    command = [sys.executable, "-m", "miles_core.engines.embedded", "--hf-checkpoint", str(hf_checkpoint),
               "--host", host, "--port", str(port), "--device", device, "--dtype", dtype,
               "--max-batch-size", str(max_batch_size)]
    if random_seed is not None:
        command += ["--random-seed", str(random_seed)]
    return command + list(extra_args)


def launch_engine(command: list[str], host: str, port: int, *, log_path: str | Path | None = None,
                  env: dict[str, str] | None = None, startup_timeout: float = 600.0,
                  health_path: str = "/health") -> EngineHandle:
    """Run an engine command (an ``EngineSpec.command`` result) and wait until it is healthy."""
    return launch_server(command, f"http://{_url_host(host)}:{port}", name="engine", log_path=log_path, env=env,
                         health_path=health_path, startup_timeout=startup_timeout)


def start_engine(hf_checkpoint: str | Path, *, host: str = "127.0.0.1", port: int | None = None,
                 device: str = "auto", dtype: str = "auto", random_seed: int | None = None,
                 max_batch_size: int = 64, log_path: str | Path | None = None, env: dict[str, str] | None = None,
                 startup_timeout: float = 180.0, extra_args: Sequence[str] = ()) -> EngineHandle:
    """Start an embedded engine on ``host`` (a free port unless ``port`` is given) and wait for ``/health``.

    A port taken between choosing and binding it is retried with another free port.
    """
    attempts = 1 if port is not None else _PORT_ATTEMPTS
    for attempt in range(attempts):
        chosen = port if port is not None else free_port(host)
        command = embedded_engine_command(hf_checkpoint, host=host, port=chosen, device=device, dtype=dtype,
                                          random_seed=random_seed, max_batch_size=max_batch_size,
                                          extra_args=extra_args)
        try:
            return launch_engine(command, host, chosen, log_path=log_path, env=env, startup_timeout=startup_timeout)
        except ServerStartError as error:
            if attempt + 1 < attempts and port_in_use_error(error):
                continue
            raise
    raise AssertionError("unreachable")


def _url_host(host: str) -> str:
    """The host part of a URL to reach a server bound to ``host`` (0.0.0.0 is reached on loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
