"""Which engines serve: a restarted engine joins the router only with the current weights."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from miles_core.ray.engine_fleet import DEAD, PENDING, RESTARTING, SERVING, EngineFleet, _Slot


@pytest.fixture
def fleet(monkeypatch):
    fleet = EngineFleet(SimpleNamespace(), placement=None, engine_name="embedded", run_dir="/tmp", router_url="http://r")
    fleet.router_calls = []
    monkeypatch.setattr(fleet, "_router_add", lambda url: fleet.router_calls.append(("add", url)))
    monkeypatch.setattr(fleet, "_router_remove", lambda url: fleet.router_calls.append(("remove", url)))
    fleet.slots = [_Slot(actor=None, url="http://e0", state=SERVING), _Slot(actor=None, url="http://e1", state=PENDING),
                   _Slot(actor=None, url="http://e2", state=PENDING), _Slot(actor=None, url=None, state=RESTARTING),
                   _Slot(actor=None, url="http://e4", state=DEAD)]
    return fleet


def test_a_serving_engine_the_sync_missed_leaves_the_router(fleet):
    assert fleet.admit(["http://e1", "http://e2"], weights_are_checkpoint=False) == [1, 2]
    assert fleet.states()[:3] == [PENDING, SERVING, SERVING]
    assert ("remove", "http://e0") in fleet.router_calls


def test_before_training_a_fresh_engine_serves_without_a_sync(fleet):
    fleet.admit([], weights_are_checkpoint=True)
    assert fleet.states()[0] == SERVING and fleet.router_calls == []


def test_sync_targets_are_the_serving_and_pending_engines(fleet):
    assert fleet.urls() == ["http://e0", "http://e1", "http://e2"]


def test_admit_only_pending_engines_the_sync_reached(fleet):
    # e2 restarted while the sync was under way: it did not get the weights and must keep waiting
    assert fleet.admit(["http://e0", "http://e1"], weights_are_checkpoint=False) == [1]
    assert fleet.states() == [SERVING, SERVING, PENDING, RESTARTING, DEAD]
    assert fleet.router_calls == [("add", "http://e1")]
    assert fleet.weights_are_checkpoint is False


def test_health_round_restarts_dead_engines_without_checking_them(fleet, monkeypatch):
    import httpx

    monkeypatch.setattr(httpx, "get", lambda url, **kw: httpx.Response(200, request=httpx.Request("GET", url))
                        if "e0" in url or "e1" in url else (_ for _ in ()).throw(httpx.ConnectError("refused")))
    assert sorted(fleet._failed_checks(ignore_grace=True)) == [(2, "http://e2"), (4, "http://e4")]


def test_paused_monitor_checks_nothing_and_resume_restarts_the_grace_period(fleet, monkeypatch):
    import threading
    import time

    checked = threading.Event()
    monkeypatch.setattr(fleet, "_failed_checks", lambda ignore_grace=False: checked.set() or [])
    fleet.interval, fleet.first_wait = 0.01, 60.0
    fleet.pause()
    fleet.start_monitor()
    try:
        assert not checked.wait(0.2)
        fleet.resume()
        assert checked.wait(5)
        assert all(slot.check_after > time.monotonic() + 50 for slot in fleet.slots)
    finally:
        fleet._stop.set()
        fleet._monitor.join(5)


def test_recover_restarts_failed_engines_and_waits_for_restarts_in_progress(fleet, monkeypatch):
    import threading

    restarted = []

    def fake_restart(index, failed_url):
        assert failed_url == fleet.slots[index].url
        restarted.append(index)
        fleet.slots[index].url, fleet.slots[index].state = f"http://new{index}", PENDING

    monkeypatch.setattr(fleet, "_failed_checks", lambda ignore_grace=False: [(2, "http://e2"), (4, "http://e4")])
    monkeypatch.setattr(fleet, "restart", fake_restart)

    def finish_slot_3():  # a restart another thread (the monitor) has under way
        with fleet._cond:
            fleet.slots[3].url, fleet.slots[3].state = "http://new3", PENDING
            fleet._cond.notify_all()

    threading.Timer(0.2, finish_slot_3).start()
    urls = fleet.recover()
    assert restarted == [2, 4]
    assert urls == ["http://e0", "http://e1", "http://new2", "http://new3", "http://new4"]


def test_a_restart_already_done_by_another_thread_is_not_repeated(fleet):
    fleet.slots[1].url = "http://restarted-meanwhile"
    fleet.restart(1, "http://e1")  # returns at once: no Ray call, nothing changes
    assert fleet.slots[1].url == "http://restarted-meanwhile" and fleet.restarts == 0
