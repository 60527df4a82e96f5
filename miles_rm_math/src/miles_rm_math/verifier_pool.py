"""A small pool of math-verify worker processes with a hard time bound on every check.

Why processes: math-verify's own timeout is ``signal.alarm``, which raises in any thread but the main
one, and sympy can spin in native code (``10^{10^{10}}``) where no signal reaches. The rollout calls
rewards from worker threads and event loops, so each check is sent to a separate process instead:

- a worker interrupts itself after ``timeout_s`` (``SIGALRM`` in *its* main thread) and stays warm;
- if it has not answered ``HARD_GRACE_S`` later, it is killed and a fresh one is started at once,
  so the next check does not wait for it;
- either way the check returns a ``timeout`` :class:`Verdict`; callers score it as a wrong answer and
  record the reason on the sample. Nothing blocks for longer than ``timeout_s + HARD_GRACE_S`` once a
  worker is ready.

The pool is thread-safe: any thread may call :meth:`VerifierPool.check`; each call takes an idle
worker (waiting if all are busy), so ``num_workers`` bounds the CPU used for verification. Workers
start lazily, on first use, with ``python -m miles_rm_math._worker`` (POSIX only).
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "HARD_GRACE_S",
    "Verdict",
    "VerifierOptions",
    "VerifierPool",
    "VerifierStartupError",
    "close_pools",
    "default_num_workers",
    "get_pool",
]

logger = logging.getLogger(__name__)

#: Seconds a worker may overrun its own timeout before it is killed.
HARD_GRACE_S = 1.0
_STARTUP_TIMEOUT_S = 120.0


class VerifierStartupError(RuntimeError):
    """A worker could not start (math-verify missing, interpreter broken): a set-up problem, not an answer."""


class _WorkerExited(Exception):
    def __init__(self, returncode: int | None):
        super().__init__(f"worker exited with code {returncode}")
        self.returncode = returncode


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check. ``status``: ``equivalent`` | ``different`` | ``timeout`` | ``error``."""

    status: Literal["equivalent", "different", "timeout", "error"]
    detail: str | None = None

    @property
    def correct(self) -> bool:
        return self.status == "equivalent"

    @property
    def failed(self) -> bool:
        """True when no answer was reached (timeout or worker error): the sample scores as wrong."""
        return self.status in ("timeout", "error")


def default_num_workers() -> int:
    """Up to 4 workers, never more than the CPUs of this machine."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class VerifierOptions:
    """How checks are bounded: the ``--math-verify-*`` flags."""

    timeout_s: float = 5.0
    num_workers: int = field(default_factory=default_num_workers)
    memory_limit_mb: int = 2048

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"--math-verify-timeout must be > 0 seconds, got {self.timeout_s}")
        if self.num_workers < 1:
            raise ValueError(f"--math-verify-workers must be at least 1, got {self.num_workers}")
        if self.memory_limit_mb < 0 or 0 < self.memory_limit_mb < 256:
            raise ValueError(
                f"--math-verify-memory-limit-mb must be 0 (no limit) or at least 256 (sympy needs about 100 MB), "
                f"got {self.memory_limit_mb}"
            )


class _Worker:
    """One worker process and the JSON-lines conversation with it."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                        close_fds=True)
        self._buffer = bytearray()
        self.ready = False

    def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        try:
            reply = self._read_message(time.monotonic() + timeout_s)
        except _WorkerExited as exc:
            self.kill()
            raise VerifierStartupError(
                f"the math-verify worker ({' '.join(self.command)}) exited with code {exc.returncode} while "
                "starting; its error is printed above. Is math-verify installed here (pip install math-verify)?"
            ) from None
        if reply is None or not reply.get("ready"):
            self.kill()
            raise VerifierStartupError(f"the math-verify worker did not start within {timeout_s:.0f} s (got {reply!r})")
        self.ready = True

    def ask(self, message: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """Send one request; the reply, or ``None`` when ``deadline`` passed first."""
        data = (json.dumps(message) + "\n").encode()
        fd = self.process.stdin.fileno()  # type: ignore[union-attr]
        try:
            while data:
                data = data[os.write(fd, data):]
        except (BrokenPipeError, OSError):
            raise _WorkerExited(self.process.poll()) from None
        return self._read_message(deadline)

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        fd = self.process.stdout.fileno()  # type: ignore[union-attr]
        poller = select.poll()  # not select.select: it fails on descriptors above 1024 (busy Ray processes)
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # the worker closed its end: it exited or is exiting
                self.kill()
                raise _WorkerExited(self.process.returncode)
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return json.loads(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL (uninterruptible I/O)
            logger.warning("math-verify worker %d did not exit within 5 s of SIGKILL", self.process.pid)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class VerifierPool:
    """``num_workers`` math-verify processes; :meth:`check` is safe to call from any thread.

    ``worker_command`` replaces ``python -m miles_rm_math._worker`` (tests use it to stand in a worker
    that hangs in native code or crashes); ``hard_grace_s`` is how long a worker may overrun its timeout
    before it is killed.
    """

    def __init__(self, options: VerifierOptions, *, worker_command: Sequence[str] | None = None,
                 hard_grace_s: float = HARD_GRACE_S) -> None:
        self.options = options
        self.hard_grace_s = hard_grace_s
        self.worker_command = list(worker_command) if worker_command is not None else [
            sys.executable, "-m", "miles_rm_math._worker", "--memory-limit-mb", str(options.memory_limit_mb)]
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()  # warm workers first
        for _ in range(options.num_workers):
            self._idle.put(None)  # started on first use
        self._request_ids = itertools.count()
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._closed = False

    def check(self, golds: Sequence[str], answer: str) -> Verdict:
        """Is ``answer`` equal to one of ``golds``? Never takes longer than the timeout (plus grace) once started."""
        if self._closed:
            raise RuntimeError("this math-verify pool is closed")
        worker = self._idle.get()
        try:
            if worker is None or worker.process.poll() is not None:
                worker = self._start_worker()
            worker.wait_ready(_STARTUP_TIMEOUT_S)
            timeout_s = self.options.timeout_s
            request = {"id": next(self._request_ids), "golds": list(golds), "answer": answer, "timeout": timeout_s}
            self._count("checks")
            reply = worker.ask(request, deadline=time.monotonic() + timeout_s + self.hard_grace_s)
            if reply is None:
                worker.kill()
                worker = self._start_worker()  # warm up the replacement while the caller moves on
                self._count("timeouts", "workers_replaced")
                return Verdict("timeout", f"math-verify did not finish within {timeout_s:g} s "
                                          "(--math-verify-timeout); the stuck worker was killed and replaced")
            if reply.get("timeout"):
                self._count("timeouts")
                return Verdict("timeout", f"math-verify did not finish within {timeout_s:g} s (--math-verify-timeout)")
            if "error" in reply:
                self._count("errors")
                return Verdict("error", f"math-verify failed: {reply['error']}")
            return Verdict("equivalent" if reply["equivalent"] else "different")
        except _WorkerExited as exc:
            worker.kill()
            worker = None  # replaced on the next check
            self._count("errors", "workers_replaced")
            return Verdict("error", f"the math-verify worker died during the check ({exc}); it will be replaced")
        except VerifierStartupError:
            worker = None
            raise
        finally:
            if self._closed and worker is not None:
                worker.kill()
            else:
                self._idle.put(worker)

    def warm_up(self) -> None:
        """Start every worker now and wait until each is ready (benchmarks; a run starts them lazily)."""
        workers = [self._idle.get() for _ in range(self.options.num_workers)]
        try:
            workers = [w if w is not None and w.process.poll() is None else self._start_worker() for w in workers]
            for worker in workers:
                worker.wait_ready(_STARTUP_TIMEOUT_S)
        finally:
            for worker in workers:
                self._idle.put(worker)

    def stats(self) -> dict[str, int]:
        """Counters since start: ``checks``, ``timeouts``, ``errors``, ``workers_started``, ``workers_replaced``."""
        with self._stats_lock:
            return {key: self._stats[key] for key in
                    ("checks", "timeouts", "errors", "workers_started", "workers_replaced")}

    def close(self) -> None:
        """Stop the idle workers now; busy ones stop when their check returns."""
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()

    def _start_worker(self) -> _Worker:
        self._count("workers_started")
        return _Worker(self.worker_command)

    def _count(self, *keys: str) -> None:
        with self._stats_lock:
            for key in keys:
                self._stats[key] += 1


# One pool per process and per set of options, shared by every reward call of that process.
_POOLS: dict[VerifierOptions, VerifierPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(options: VerifierOptions) -> VerifierPool:
    """The process-wide pool for ``options`` (created on first use)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(options)
        if pool is None:
            pool = _POOLS[options] = VerifierPool(options)
        return pool


def close_pools() -> None:
    """Stop every pool of this process (their workers exit); the next check starts fresh workers."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _forget_pools_after_fork() -> None:
    """A forked child must not talk to its parent's workers: it starts its own on first use."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


atexit.register(close_pools)
os.register_at_fork(after_in_child=_forget_pools_after_fork)
