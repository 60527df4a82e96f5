"""The rollout engines of a run: their actors, their URLs, their place in the router, their restarts.

Each engine is a slot: an :class:`~miles_core.ray.engine_actor.EngineActor` and the state of its
server, one of

- ``serving``: in the router, with the current weights;
- ``pending``: restarted, alive, but still holding the checkpoint's weights: it gets the next weight
  sync (it is in :meth:`EngineFleet.urls`) and joins the router only once that sync reached it
  (:meth:`EngineFleet.admit`), so no rollout ever mixes a trained policy with the initial one;
- ``restarting``: its server is being started again;
- ``dead``: a restart failed; the next health-check round tries again.

With ``--use-fault-tolerance`` a monitor thread health-checks every engine (``GET /health``) after
``--rollout-health-check-first-wait`` seconds, every ``--rollout-health-check-interval`` seconds, with
``--rollout-health-check-timeout``; a dead engine (crashed server, killed actor) is taken out of the
router and restarted in the same slot. Before each weight sync the loop also calls :meth:`recover`,
which does one such round at once and waits for restarts in progress (Miles's
``recover_updatable_engines``), so a sync never targets a dead engine. The monitor is paused while the
engines load weights or give their memory to a colocated trainer (a busy engine may answer late), and
waits ``--rollout-health-check-first-wait`` again after each pause, as Miles's monitor does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("miles.engines")

__all__ = ["EngineFleet"]

SERVING, PENDING, RESTARTING, DEAD = "serving", "pending", "restarting", "dead"


@dataclass
class _Slot:
    actor: Any
    url: str | None = None
    state: str = RESTARTING
    check_after: float = 0.0  # monotonic time before which the slot is not health-checked


class EngineFleet:
    """Owns the engine actors of a run (see the module docstring). Thread-safe."""

    def __init__(self, args: Any, placement: Any, engine_name: str, run_dir: str, router_url: str):
        self.args = args
        self.placement = placement
        self.engine_name = engine_name
        self.run_dir = run_dir
        self.router_url = router_url
        self.slots: list[_Slot] = []
        self.restarts = 0
        self.weights_are_checkpoint = True  # until a sync pushes trained weights, a fresh engine is current
        self._cond = threading.Condition()
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        self._paused = False
        self.first_wait = float(getattr(args, "rollout_health_check_first_wait", 0) or 0)
        self.interval = float(getattr(args, "rollout_health_check_interval", 30) or 30)
        self.timeout = float(getattr(args, "rollout_health_check_timeout", 30) or 30)

    # ------------------------------------------------------------------------------------------ start-up

    def start(self, num_engines: int) -> list[str]:
        """Start every engine (in parallel) and register each with the router."""
        import ray

        self.slots = [_Slot(self._new_actor(index)) for index in range(num_engines)]
        urls = ray.get([slot.actor.start.remote(self._gpu_ids(index)) for index, slot in enumerate(self.slots)])
        for slot, url in zip(self.slots, urls, strict=True):
            self._router_add(url)
            slot.url, slot.state, slot.check_after = url, SERVING, time.monotonic() + self.first_wait
        return list(urls)

    def start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._monitor_loop, name="miles-engine-monitor", daemon=True)
        self._monitor.start()

    def _new_actor(self, index: int) -> Any:
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

    # -------------------------------------------------------------------------------------------- views

    def urls(self) -> list[str]:
        """Every live engine (serving or pending): the targets of the next weight sync."""
        with self._cond:
            return [s.url for s in self.slots if s.url and s.state in (SERVING, PENDING)]

    def states(self) -> list[str]:
        with self._cond:
            return [s.state for s in self.slots]

    # ------------------------------------------------------------------------------------ weight version

    def admit(self, synced_urls: list[str], *, weights_are_checkpoint: bool) -> list[int]:
        """A sync reached ``synced_urls``: pending engines among them join the router (their indices are
        returned), and a serving engine the sync missed (restarted while it ran) leaves it until the next."""
        admitted, demoted = [], []
        with self._cond:
            self.weights_are_checkpoint = weights_are_checkpoint
            for index, slot in enumerate(self.slots):
                if slot.url is None:
                    continue
                if slot.state == PENDING and slot.url in synced_urls:
                    self._router_add(slot.url)
                    slot.state = SERVING
                    admitted.append(index)
                elif slot.state == SERVING and slot.url not in synced_urls and not weights_are_checkpoint:
                    self._router_remove(slot.url)
                    slot.state = PENDING
                    demoted.append(index)
        for index in admitted:
            logger.warning("engine %d received the current weights and rejoined the router", index)
        for index in demoted:
            logger.warning("engine %d missed the weight sync; out of the router until the next one", index)
        return admitted

    # ----------------------------------------------------------------------------------------- recovery

    def recover(self) -> list[str]:
        """Health-check every engine now, restart the dead ones, wait for restarts; the live URLs."""
        for index, url in self._failed_checks(ignore_grace=True):
            self.restart(index, url)
        with self._cond:
            while any(s.state == RESTARTING for s in self.slots):
                self._cond.wait(timeout=5)
        return self.urls()

    def _failed_checks(self, ignore_grace: bool = False) -> list[tuple[int, str | None]]:
        """``(index, url)`` of every engine that failed a health check now, and of every dead one."""
        import httpx

        now = time.monotonic()
        with self._cond:
            failed = [(i, s.url) for i, s in enumerate(self.slots) if s.state == DEAD]
            targets = [(i, s.url) for i, s in enumerate(self.slots)
                       if s.state in (SERVING, PENDING) and (ignore_grace or now >= s.check_after)]
        for index, url in targets:
            try:
                httpx.get(f"{url}/health", timeout=self.timeout, trust_env=False).raise_for_status()
            except httpx.HTTPError as exc:
                logger.warning("engine %d (%s) failed its health check: %s", index, url, exc)
                failed.append((index, url))
        return failed

    def pause(self) -> None:
        """No health checks until :meth:`resume` (weight loading, offload)."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            grace_end = time.monotonic() + self.first_wait
            for slot in self.slots:
                slot.check_after = max(slot.check_after, grace_end)

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._cond:
                if self._paused:
                    continue
            for index, url in self._failed_checks():
                if self._stop.is_set():
                    return
                self.restart(index, url)

    def restart(self, index: int, failed_url: str | None) -> None:
        """Take engine ``index`` out of the router and start its server again (a new actor if needed).

        ``failed_url`` is the URL that failed its check: when the slot serves another one by now, another
        thread (monitor or :meth:`recover`) has already restarted it and nothing is done.
        """
        import ray

        with self._cond:
            slot = self.slots[index]
            if slot.state == RESTARTING or slot.url != failed_url:
                return  # another thread is on it, or was
            old_url, slot.url, slot.state = slot.url, None, RESTARTING
        if old_url:
            self._router_remove(old_url)
        logger.warning("restarting engine %d (was %s)", index, old_url)
        try:
            try:
                ray.get(slot.actor.stop.remote(), timeout=60)
            except Exception:  # the actor itself is gone (or hung): replace it
                ray.kill(slot.actor, no_restart=True)
                slot.actor = self._new_actor(index)
            url = ray.get(slot.actor.start.remote(self._gpu_ids(index)))
        except Exception as exc:
            logger.error("engine %d could not be restarted (%s); the next health-check round tries again", index, exc)
            with self._cond:
                slot.state = DEAD
                self._cond.notify_all()
            return
        with self._cond:
            slot.url, slot.check_after = url, time.monotonic() + self.first_wait
            self.restarts += 1
            if self.weights_are_checkpoint:
                self._router_add(url)  # nothing trained yet: the checkpoint's weights are the current ones
                slot.state = SERVING
            else:
                slot.state = PENDING
            self._cond.notify_all()
        logger.warning("engine %d restarted at %s (%s; %d restart(s) in this run)", index, url,
                       "serving" if slot.state == SERVING else "joins the router after the next weight sync",
                       self.restarts)

    # -------------------------------------------------------------------------------------- the router

    def _router_add(self, url: str) -> None:
        import httpx

        httpx.post(f"{self.router_url}/add_worker", params={"url": url}, timeout=30, trust_env=False).raise_for_status()

    def _router_remove(self, url: str) -> None:
        import httpx

        try:
            httpx.post(f"{self.router_url}/remove_worker", params={"url": url}, timeout=10, trust_env=False)
        except httpx.HTTPError:
            pass  # the router evicts an unreachable worker by itself

    # ---------------------------------------------------------------------------------------------- end

    def shutdown(self) -> None:
        import ray

        self._stop.set()
        stops = [slot.actor.stop.remote() for slot in self.slots]
        for slot, ref in zip(self.slots, stops, strict=True):
            try:
                ray.get(ref, timeout=30)
            except Exception as exc:
                logger.warning("could not stop an engine cleanly (%s); killing its actor", exc)
            ray.kill(slot.actor, no_restart=True)  # the fate_share guard takes the server down with it
        if self._monitor is not None:
            self._monitor.join(timeout=self.timeout + 5)
