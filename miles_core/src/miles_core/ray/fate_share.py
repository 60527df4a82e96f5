"""A server process that dies with the Ray actor that started it.

Engines and the router are started by Ray actors, in sessions of their own (so a Ctrl-C meant for
the driver does not reach them half-way through a weight sync). The price of a session of one's own
is that nothing stops the server when its actor dies without cleaning up: ``ray.kill``, an OOM kill,
a ``SIGKILL`` of ``miles train`` that takes Ray down. This guard closes that hole::

    python -m miles_core.ray.fate_share --parent-pid PID -- python -m miles_core.engines.embedded ...

It runs the command as its child and

- stops the child (SIGTERM, then SIGKILL after ``--grace`` seconds) as soon as process ``PID`` is no
  longer its parent (the actor died, the guard was re-parented);
- makes the kernel SIGKILL the child if the guard itself is killed (``PR_SET_PDEATHSIG`` on Linux);
- forwards SIGTERM/SIGINT/SIGHUP to the child and exits with the child's exit status.

The guard, the child and the child's children share one process group, so ``killpg`` (what
:class:`miles_core.engines.process.ServerProcess` does on stop) reaches all of them. The guard only
imports the standard library: it adds a few milliseconds to a server start.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["fate_share_command", "main"]

_PR_SET_PDEATHSIG = 1
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def fate_share_command(command: Sequence[str], parent_pid: int | None = None, grace_s: float = 10.0,
                       poll_s: float = 0.5) -> list[str]:
    """``command`` wrapped in the guard, tied to ``parent_pid`` (default: this process)."""
    parent = os.getpid() if parent_pid is None else int(parent_pid)
    return [sys.executable, "-m", "miles_core.ray.fate_share", "--parent-pid", str(parent), "--grace", str(grace_s),
            "--poll", str(poll_s), "--", *command]


def _die_with_guard(guard_pid: int):
    """``preexec_fn`` of the child: SIGKILL when the guard dies (and at once if it already has)."""

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the guard's parent watch still applies
            return
        if os.getppid() != guard_pid:
            os._exit(1)

    return preexec


def _stop(child: subprocess.Popen, grace_s: float) -> int:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def run(command: Sequence[str], parent_pid: int, grace_s: float, poll_s: float) -> int:
    """Run ``command`` until it exits or ``parent_pid`` stops being this process's parent."""
    if os.getppid() != parent_pid:
        print(f"miles fate_share: parent {parent_pid} is already gone; not starting {command[0]}", file=sys.stderr)
        return 1
    preexec = _die_with_guard(os.getpid()) if sys.platform.startswith("linux") else None
    child = subprocess.Popen(list(command), preexec_fn=preexec)

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for sig in _FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    while True:
        try:
            return _exit_status(child.wait(timeout=poll_s))
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent_pid:
            print(f"miles fate_share: parent process {parent_pid} is gone; stopping {command[0]} (pid {child.pid})",
                  file=sys.stderr, flush=True)
            return _exit_status(_stop(child, grace_s))


def _exit_status(returncode: int) -> int:
    """A child killed by signal N gives ``-N`` in Python; a shell reports ``128 + N``."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m miles_core.ray.fate_share",
                                     description="Run a command that dies with the process PARENT_PID.")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between checks of the parent")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    return run(command, args.parent_pid, args.grace, args.poll)


if __name__ == "__main__":
    sys.exit(main())
