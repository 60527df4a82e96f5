"""Local server processes (engines, routers): start on a free port, wait until healthy, stop for sure.

A :class:`ServerProcess` runs in its own session (process group) with its output in a log file. It is
stopped with SIGTERM, then SIGKILL after a grace period, and every process still running when the
interpreter exits is stopped by an ``atexit`` hook, so a failing test or a crashed driver leaves no
server behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class ServerStartError(RuntimeError):
    """A server process exited or never became healthy; the message holds the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(eq=False)
class ServerProcess:
    """One running server: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: Path
    name: str = "server"
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if still running after ``timeout`` seconds. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(5)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (tests of fault tolerance use it)."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(5)
        self.stop()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def launch_server(command: list[str], url: str, *, name: str = "server", log_path: str | Path | None = None,
                  env: dict[str, str] | None = None, health_path: str = "/health",
                  startup_timeout: float = 180.0) -> ServerProcess:
    """Start ``command`` (which must serve ``url``) and return once ``GET url+health_path`` answers 200."""
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix=f"miles-{name}-")) / f"{name}.log"
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=full_env, start_new_session=True)
    server = ServerProcess(url=url, process=process, log_path=log_path, name=name)
    with _LIVE_LOCK:
        _LIVE.add(server)
    try:
        wait_healthy(server, health_path, startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(server: ServerProcess, health_path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise ServerStartError(
                    f"{server.name} at {server.url} exited with code {server.process.returncode} before becoming "
                    f"healthy. Log {server.log_path}:\n{log_tail(server.log_path)}")
            try:
                if client.get(server.url + health_path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{server.name} at {server.url} did not answer {health_path} within {timeout:.0f} s. "
                    f"Log {server.log_path}:\n{log_tail(server.log_path)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def port_in_use_error(error: ServerStartError) -> bool:
    text = str(error).lower()
    return "address already in use" in text or "errno 98" in text


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        try:
            server.stop(timeout=5)
        except Exception:
            pass
