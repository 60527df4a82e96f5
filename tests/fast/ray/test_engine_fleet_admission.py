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
    fleet.slots = [_Slot(actor=None, url="http://e0", state=SERVING), _Slot(actor=None, url="http://e1", state=PENDING),
                   _Slot(actor=None, url="http://e2", state=PENDING), _Slot(actor=None, url=None, state=RESTARTING),
                   _Slot(actor=None, url="http://e4", state=DEAD)]
    return fleet


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
    assert sorted(fleet._failed_checks(ignore_grace=True)) == [2, 4]
