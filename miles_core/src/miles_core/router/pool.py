"""The router's workers: who is healthy, how busy each is, and which one takes the next request.

Pure bookkeeping (no I/O), used from the router's single asyncio thread.

Health: a worker is *evicted* (no new requests) after ``failure_threshold`` consecutive failed health
checks, or at once when a request cannot connect to it; it is *re-admitted* after
``success_threshold`` consecutive successful checks. Unlike Miles's router, eviction is not permanent:
an engine that restarts on the same address comes back by itself.

Selection policies:

- ``least_in_flight`` (default): the healthy worker with the fewest requests in flight (ties: fewest
  served so far), as Miles's router does;
- ``round_robin``: healthy workers in turn;
- ``random``: uniformly at random;
- ``power_of_two``: two healthy workers at random, the less busy one (Mitzenmacher, "The Power of Two
  Choices in Randomized Load Balancing", 2001).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

POLICIES = ("least_in_flight", "round_robin", "random", "power_of_two")


def normalize_worker_url(url: str) -> str:
    """``host:port`` or ``http://host:port/`` → ``http://host:port``; a clear error for anything else."""
    raw = str(url).strip()
    parts = urlsplit(raw if "://" in raw else "http://" + raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"worker URL must look like http://host:port, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class WorkerState:
    """One worker as the router sees it (also what ``GET /workers`` shows)."""

    url: str
    healthy: bool = True
    in_flight: int = 0
    total_requests: int = 0
    failed_requests: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    evictions: int = 0
    last_error: str | None = None
    last_check: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class WorkerPool:
    """Registered workers, their health and load, and the selection policy."""

    def __init__(self, *, failure_threshold: int = 3, success_threshold: int = 1, policy: str = "least_in_flight",
                 seed: int | None = None) -> None:
        if failure_threshold < 1 or success_threshold < 1:
            raise ValueError("failure_threshold and success_threshold must be >= 1")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.policy = policy
        self._workers: dict[str, WorkerState] = {}
        self._rng = random.Random(seed)
        self._next = 0

    # ---------------------------------------------------------------------------------- membership

    def add(self, url: str) -> WorkerState:
        """Register a worker (healthy until shown otherwise); adding one twice keeps its state."""
        url = normalize_worker_url(url)
        if url not in self._workers:
            self._workers[url] = WorkerState(url)
        return self._workers[url]

    def remove(self, url: str) -> bool:
        return self._workers.pop(normalize_worker_url(url), None) is not None

    def get(self, url: str) -> WorkerState | None:
        return self._workers.get(url)

    def urls(self) -> list[str]:
        return list(self._workers)

    def healthy(self) -> list[WorkerState]:
        return [w for w in self._workers.values() if w.healthy]

    def states(self) -> list[WorkerState]:
        return list(self._workers.values())

    # ---------------------------------------------------------------------------------- selection

    def select(self, exclude: Iterable[str] = ()) -> WorkerState | None:
        """The worker for the next request (``None`` when no healthy worker is left)."""
        excluded = set(exclude)
        candidates = [w for w in self._workers.values() if w.healthy and w.url not in excluded]
        if not candidates:
            return None
        if self.policy == "round_robin":
            self._next = (self._next + 1) % len(candidates)
            return candidates[self._next]
        if self.policy == "random":
            return self._rng.choice(candidates)
        if self.policy == "power_of_two" and len(candidates) > 2:
            candidates = self._rng.sample(candidates, 2)
        return min(candidates, key=lambda w: (w.in_flight, w.total_requests))

    def acquire(self, worker: WorkerState) -> None:
        worker.in_flight += 1
        worker.total_requests += 1

    def release(self, worker: WorkerState, *, failed: bool = False) -> None:
        worker.in_flight = max(0, worker.in_flight - 1)
        if failed:
            worker.failed_requests += 1

    # ---------------------------------------------------------------------------------- health

    def record_check(self, url: str, ok: bool, error: str | None = None) -> str | None:
        """Record one health check; return ``"evicted"`` or ``"readmitted"`` when the state changes."""
        worker = self._workers.get(url)
        if worker is None:  # removed while the check was running
            return None
        worker.last_check = time.time()
        if ok:
            worker.consecutive_failures = 0
            worker.consecutive_successes += 1
            if not worker.healthy and worker.consecutive_successes >= self.success_threshold:
                worker.healthy = True
                worker.last_error = None
                return "readmitted"
            return None
        worker.consecutive_successes = 0
        worker.consecutive_failures += 1
        worker.last_error = error
        if worker.healthy and worker.consecutive_failures >= self.failure_threshold:
            return self._evict(worker)
        return None

    def mark_unreachable(self, url: str, error: str) -> str | None:
        """A request could not reach the worker: evict it now (health checks re-admit it later)."""
        worker = self._workers.get(url)
        if worker is None:
            return None
        worker.last_error = error
        worker.consecutive_successes = 0
        worker.consecutive_failures = max(worker.consecutive_failures, self.failure_threshold)
        return self._evict(worker) if worker.healthy else None

    @staticmethod
    def _evict(worker: WorkerState) -> str:
        worker.healthy = False
        worker.evictions += 1
        return "evicted"
