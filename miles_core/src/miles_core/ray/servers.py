"""Engine and router processes of a run, each tied to the Ray actor that starts it.

The commands are the engines' and the router's own (an ``EngineSpec.command``, ``router_command``);
what this module adds is the :mod:`~miles_core.ray.fate_share` guard around them, so a server never
outlives its actor, and the retry on a port taken between choosing and binding it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from miles_core.engines.process import ServerProcess, ServerStartError, free_port, launch_server, port_in_use_error
from miles_core.ray.fate_share import fate_share_command

__all__ = ["start_guarded_server", "start_engine_server", "start_router_server"]

_PORT_ATTEMPTS = 3


def start_guarded_server(build_command: Callable[[int], list[str]], host: str, *, name: str,
                         log_path: str | None, env: dict[str, str] | None = None,
                         startup_timeout: float = 600.0) -> ServerProcess:
    """Start ``build_command(port)`` on a free port of ``host`` under the guard; wait for ``/health``."""
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port(host)
        command = fate_share_command(build_command(port), parent_pid=os.getpid())
        try:
            return launch_server(command, f"http://{url_host}:{port}", name=name, log_path=log_path, env=env,
                                 startup_timeout=startup_timeout)
        except ServerStartError as error:
            if attempt + 1 < _PORT_ATTEMPTS and port_in_use_error(error):
                continue
            raise
    raise AssertionError("unreachable")


def start_engine_server(spec: Any, args: Any, engine_index: int, host: str, *, log_path: str | None,
                        env: dict[str, str] | None = None) -> ServerProcess:
    """Engine ``engine_index`` of the run, from the selected ``EngineSpec``."""
    return start_guarded_server(lambda port: spec.command(args, host, port, engine_index), host,
                                name=f"engine-{engine_index}", log_path=log_path, env=env)


def start_router_server(args: Any, *, log_path: str | None, host: str = "127.0.0.1") -> ServerProcess:
    """The run's router, configured from the ``miles train`` flags (health checks, ``--router-*``)."""
    from miles_core.router.local import router_command, router_options_from_args

    options = router_options_from_args(args)
    return start_guarded_server(lambda port: router_command(host=host, port=port, **options), host,
                                name="router", log_path=log_path, startup_timeout=120.0)
