"""Start the router as a local process (tests, benchmarks and the Ray rollout manager use this).

Example::

    from miles_core.router.local import start_router

    with start_router(worker_urls=[engine.url], health_check_interval=1.0) as router:
        print(router.url)   # http://127.0.0.1:<free port>, already answering /health
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miles_core.engines.process import ServerProcess, ServerStartError, free_port, launch_server, port_in_use_error

__all__ = ["RouterHandle", "router_command", "router_options_from_args", "start_router"]

#: A running router: ``url``, ``pid``, ``log_path``, ``stop()``; usable as a context manager.
RouterHandle = ServerProcess

_PORT_ATTEMPTS = 3


def router_command(*, host: str, port: int, worker_urls: Sequence[str] = (), policy: str = "least_in_flight",
                   health_check_interval: float = 30.0, health_check_timeout: float = 5.0,
                   health_check_first_wait: float = 0.0, failure_threshold: int = 3, success_threshold: int = 1,
                   request_timeout: float | None = None, max_connections: int = 1024,
                   extra_args: Sequence[str] = ()) -> list[str]:
    """The router's command line (``extra_args`` go last, so passthrough flags win)."""
    command = [sys.executable, "-m", "miles_core.router", "--host", host, "--port", str(port),
               "--policy", policy,
               "--health-check-interval-secs", str(health_check_interval),
               "--health-check-timeout-secs", str(health_check_timeout),
               "--health-check-first-wait-secs", str(health_check_first_wait),
               "--health-failure-threshold", str(failure_threshold),
               "--health-success-threshold", str(success_threshold),
               "--max-connections", str(max_connections)]
    if request_timeout is not None:
        command += ["--request-timeout-secs", str(request_timeout)]
    if worker_urls:
        command += ["--worker-urls", *worker_urls]
    return command + list(extra_args)


def router_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``start_router`` keyword arguments from ``miles train`` flags: the fault-tolerance health-check
    flags, a connection budget sized like Miles's (``--sglang-server-concurrency`` per engine), and every
    ``--router-*`` passthrough flag."""
    from miles_core.engines.sglang_server import passthrough_flags

    engines = max(1, int(getattr(args, "rollout_num_gpus", 1) or 1) //
                  max(1, int(getattr(args, "rollout_num_gpus_per_engine", 1) or 1)))
    return {
        "health_check_interval": float(getattr(args, "rollout_health_check_interval", 30)),
        "health_check_timeout": float(getattr(args, "rollout_health_check_timeout", 30)),
        "health_check_first_wait": float(getattr(args, "rollout_health_check_first_wait", 0)),
        "max_connections": int(getattr(args, "sglang_server_concurrency", 512) or 512) * engines,
        "extra_args": passthrough_flags(getattr(args, "router_args", None), skip=("host", "port")),
    }


def start_router(*, host: str = "127.0.0.1", port: int | None = None, worker_urls: Sequence[str] = (),
                 log_path: str | Path | None = None, startup_timeout: float = 60.0,
                 env: dict[str, str] | None = None, **options: Any) -> RouterHandle:
    """Start the router on ``host`` (a free port unless ``port`` is given) and wait for its ``/health``.

    ``options`` are :func:`router_command`'s (policy, health-check settings, ``extra_args`` …).
    """
    attempts = 1 if port is not None else _PORT_ATTEMPTS
    for attempt in range(attempts):
        chosen = port if port is not None else free_port(host)
        command = router_command(host=host, port=chosen, worker_urls=worker_urls, **options)
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        try:
            return launch_server(command, f"http://{url_host}:{chosen}", name="router", log_path=log_path, env=env,
                                 startup_timeout=startup_timeout)
        except ServerStartError as error:
            if attempt + 1 < attempts and port_in_use_error(error):
                continue
            raise
    raise AssertionError("unreachable")
