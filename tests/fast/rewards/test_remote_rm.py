"""``remote_rm`` against a scripted reward service on loopback: answers, retries and errors."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from miles_core.rewards.remote import RemoteRewardError, remote_rm

from miles_core import Sample


class RewardService:
    """Answers each POST with the next scripted (status, body) and records the request bodies."""

    def __init__(self):
        self.script: list[tuple[int, str]] = []
        self.received: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                service.received.append(json.loads(self.rfile.read(length)))
                status, body = service.script.pop(0)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/score"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def service():
    svc = RewardService()
    yield svc
    svc.close()


@pytest.fixture
def rm_args(miles_args, service):
    service.script.clear()
    service.received.clear()
    return lambda **kw: miles_args(rm_url=service.url, rm_retry_backoff=0.01, rm_max_retries=2, **kw)


def _score(args, sample=None):
    sample = sample or Sample(prompt="p", response="r", label="l", metadata={"k": 1})
    return asyncio.run(remote_rm(args, sample))


def test_a_number_is_the_reward_and_the_request_carries_the_sample(rm_args, service):
    service.script = [(200, "0.75")]
    assert _score(rm_args()) == 0.75
    assert service.received == [{"prompt": "p", "response": "r", "label": "l", "metadata": {"k": 1}}]


def test_an_object_needs_the_reward_key_field(rm_args, service):
    service.script = [(200, '{"score": 1, "acc": true}')]
    assert _score(rm_args(reward_key="score")) == {"score": 1, "acc": True}
    service.script = [(200, '{"acc": true}')]
    with pytest.raises(RemoteRewardError, match=r"without the field 'score' \(--reward-key\); fields: \['acc'\]"):
        _score(rm_args(reward_key="score"))
    service.script = [(200, '{"score": 1}')]
    with pytest.raises(RemoteRewardError, match="set --reward-key"):
        _score(rm_args())


def test_server_errors_are_retried_then_succeed(rm_args, service):
    service.script = [(503, "busy"), (500, "oops"), (200, "1")]
    assert _score(rm_args()) == 1.0
    assert len(service.received) == 3


def test_retries_are_bounded(rm_args, service):
    service.script = [(500, "down")] * 3
    with pytest.raises(RemoteRewardError, match=r"failed after 3 attempts \(--rm-max-retries\): HTTP 500: down"):
        _score(rm_args())


def test_client_errors_and_bad_bodies_fail_at_once(rm_args, service):
    service.script = [(404, "no such route")]
    with pytest.raises(RemoteRewardError, match="answered HTTP 404: no such route"):
        _score(rm_args())
    assert len(service.received) == 1
    service.script = [(200, "<html>")]
    with pytest.raises(RemoteRewardError, match="not JSON"):
        _score(rm_args())
    service.script = [(200, '"high"')]
    with pytest.raises(RemoteRewardError, match="expected a number or an object"):
        _score(rm_args())


def test_unreachable_service_and_missing_url(miles_args):
    args = miles_args(rm_url="http://127.0.0.1:9/score", rm_max_retries=1, rm_retry_backoff=0.01, rm_timeout=2.0)
    with pytest.raises(RemoteRewardError, match="failed after 2 attempts"):
        _score(args)
    with pytest.raises(RemoteRewardError, match="needs --rm-url"):
        _score(miles_args())
