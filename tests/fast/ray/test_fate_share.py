"""The fate-share guard: a server started by a Ray actor dies with that actor, whatever kills it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from miles_core.ray.fate_share import fate_share_command
from proc_support import child_pids

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]

# The middle process stands for the Ray actor: it starts the guard (tied to itself) and waits.
MIDDLE = """
import subprocess, sys, time
from miles_core.ray.fate_share import fate_share_command
guard = subprocess.Popen(fate_share_command({sleeper!r}, poll_s=0.1, grace_s=2))
print(guard.pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def child_of(pid: int) -> int:
    assert wait_until(lambda: child_pids(pid)), f"process {pid} started no child"
    return child_pids(pid)[0]


@pytest.fixture
def middle():
    """(middle process, guard pid, server pid); everything is killed at the end."""
    proc = subprocess.Popen([sys.executable, "-c", MIDDLE.format(sleeper=SLEEPER)], stdout=subprocess.PIPE, text=True)
    guard = int(proc.stdout.readline())
    server = child_of(guard)
    yield proc, guard, server
    for pid in (server, guard, proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(5)


def test_server_dies_when_the_process_that_started_it_is_killed(middle):
    proc, guard, server = middle
    assert alive(server) and alive(guard)
    proc.kill()  # SIGKILL of the "actor": it runs no clean-up
    proc.wait(5)
    assert wait_until(lambda: not alive(server)), "the server outlived its actor"
    assert wait_until(lambda: not alive(guard))


def test_server_dies_when_the_guard_is_killed(middle):
    _, guard, server = middle
    os.kill(guard, signal.SIGKILL)
    assert wait_until(lambda: not alive(server)), "the server outlived its guard (PR_SET_PDEATHSIG)"


def test_guard_forwards_sigterm_and_reports_the_exit_status():
    guard = subprocess.Popen(fate_share_command(SLEEPER, poll_s=0.1))
    server = child_of(guard.pid)
    guard.send_signal(signal.SIGTERM)
    assert guard.wait(10) == 128 + signal.SIGTERM
    assert wait_until(lambda: not alive(server))


def test_guard_exits_with_the_server_status():
    guard = subprocess.run(fate_share_command([sys.executable, "-c", "raise SystemExit(7)"]), timeout=30)
    assert guard.returncode == 7


def test_guard_does_not_start_a_server_for_a_parent_already_gone():
    result = subprocess.run(fate_share_command(SLEEPER, parent_pid=1), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "already gone" in result.stderr


def test_command_without_server_is_an_error():
    result = subprocess.run([sys.executable, "-m", "miles_core.ray.fate_share", "--parent-pid", str(os.getpid())],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no command given" in result.stderr
