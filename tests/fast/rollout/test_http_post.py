"""The one retry loop of the rollout side (``post_json_with_retries``), on an in-memory transport."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from miles_core.rollout import http_post
from miles_core.rollout.http_post import RequestAborted, post_json_with_retries


class Boom(RuntimeError):
    pass


def _post(answers, *, waits=None, monkeypatch=None, **kwargs):
    """POST through a client whose transport answers (or raises) the scripted items in turn."""
    script = list(answers)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return httpx.Response(item[0], text=item[1])

    if waits is not None:
        async def no_sleep(seconds):
            waits.append(seconds)

        monkeypatch.setattr(http_post.asyncio, "sleep", no_sleep)
    options = dict(what="POST http://x/generate", error=Boom, max_retries=3, backoff=1.0, max_wait=3.0,
                   retries_flag="--retries")
    options.update(kwargs)

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await post_json_with_retries(client, "http://x/generate", {"a": 1}, **options)

    return asyncio.run(run()), sent


def test_retries_back_off_exponentially_up_to_max_wait(monkeypatch):
    waits: list[float] = []
    answer, sent = _post([(503, "busy"), (429, "slow down"), (500, "oops"), (200, '{"ok": true}')], waits=waits,
                         monkeypatch=monkeypatch)
    assert answer == {"ok": True} and len(sent) == 4
    assert waits == [1.0, 2.0, 3.0]  # 1, 2, then 4 capped at max_wait


def test_timeouts_are_named_by_their_flag_when_one_is_given(monkeypatch):
    timeout = httpx.ReadTimeout("slow")
    with pytest.raises(Boom, match=r"^POST http://x/generate failed after 2 attempts \(--retries\): "
                                   r"no answer within 5\.0 s \(--timeout\)$"):
        _post([timeout, timeout], waits=[], monkeypatch=monkeypatch, max_retries=1, timeout=5.0,
              timeout_flag="--timeout")
    with pytest.raises(Boom, match=r"failed after 1 attempts \(--retries\): ReadTimeout: slow$"):
        _post([timeout], max_retries=0)


def test_an_abort_stops_the_retries_before_the_next_attempt(monkeypatch):
    calls = iter([False, True])
    with pytest.raises(RequestAborted, match="^POST http://x/generate: the rollout was aborted$"):
        _post([(500, "down")], waits=[], monkeypatch=monkeypatch, aborted=lambda: next(calls))
