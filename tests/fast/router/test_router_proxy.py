"""The router process in front of small fake workers: registration, verbatim proxying, streaming,
least in-flight spreading, retry on unreachable workers, health-check eviction and re-admission."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from miles_core.engines.process import free_port
from miles_core.router.local import start_router


class FakeWorker:
    """A uvicorn server in a thread: echoes requests, streams, and answers /health as told."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.healthy = True
        app = FastAPI()

        @app.get("/health")
        async def health():
            return JSONResponse({}, status_code=200 if self.healthy else 503)

        @app.get("/stream")
        async def stream():
            async def events():
                for i in range(5):
                    yield f"data: {i}\n\n".encode()
                    await asyncio.sleep(0.2)
            return StreamingResponse(events(), media_type="text/event-stream")

        @app.post("/slow")
        async def slow():
            await asyncio.sleep(0.3)
            return {"worker": self.url}

        @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def echo(request: Request, rest: str):
            body = await request.body()
            return JSONResponse(
                {"method": request.method, "raw_path": request.scope["raw_path"].decode(),
                 "query": request.url.query, "headers": dict(request.headers), "body": body.decode("latin-1")},
                status_code=int(request.query_params.get("status", 200)), headers={"x-upstream": "yes"})

        self.app = app
        self.start()

    def start(self) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "fake worker did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def router():
    handle = start_router(health_check_interval=0.1, health_check_timeout=1.0, failure_threshold=2)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def http(router):
    """A client of the router that starts every test with no worker registered."""
    with httpx.Client(base_url=router.url, timeout=30) as client:
        for url in client.get("/list_workers").json()["urls"]:
            client.post("/remove_worker", params={"url": url})
        yield client


@pytest.fixture
def workers():
    started: list[FakeWorker] = []

    def make(port: int | None = None) -> FakeWorker:
        started.append(FakeWorker(port))
        return started[-1]

    yield make
    for worker in started:
        worker.stop()


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def worker_state(http: httpx.Client, url: str) -> dict:
    return next(w for w in http.get("/workers").json()["workers"] if w["url"] == url)


def test_workers_are_added_listed_and_removed(http, workers):
    a, b = workers(), workers()
    assert http.get("/list_workers").json() == {"urls": []}
    assert http.post("/add_worker", params={"url": a.url}).json()["status"] == "success"
    assert http.post("/add_worker", json={"url": b.url + "/"}).status_code == 200
    assert http.get("/list_workers").json() == {"urls": [a.url, b.url]}
    assert http.get("/health").json() == {"status": "ok", "workers": 2, "healthy_workers": 2}
    assert http.post("/remove_worker", params={"worker_url": a.url}).json()["worker_urls"] == [b.url]
    missing = http.post("/remove_worker", params={"url": a.url})
    assert missing.status_code == 404 and a.url in missing.json()["error"]["message"]
    assert http.post("/add_worker").status_code == 400
    assert http.post("/add_worker", params={"url": "ftp://x"}).status_code == 400


def test_no_healthy_worker_is_a_503_json_error(http):
    response = http.post("/generate", json={"text": "hi"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "no_healthy_worker" and "0 registered" in error["message"]


def test_requests_and_answers_pass_through_verbatim(http, workers):
    worker = workers()
    http.post("/add_worker", params={"url": worker.url})
    body = b"\x00raw bytes, not JSON \xff"
    response = http.put("/echo/a%20b/c?x=1&y=two&status=418", content=body,
                        headers={"X-SMG-Routing-Key": "key-7", "Content-Type": "application/octet-stream"})
    assert response.status_code == 418
    assert response.headers["x-upstream"] == "yes" and response.headers["x-miles-worker"] == worker.url
    echo = response.json()
    assert echo["method"] == "PUT" and echo["raw_path"] == "/echo/a%20b/c"
    assert echo["query"] == "x=1&y=two&status=418" and echo["body"] == body.decode("latin-1")
    assert echo["headers"]["x-smg-routing-key"] == "key-7"
    assert echo["headers"]["content-type"] == "application/octet-stream"
    for method in ("GET", "DELETE"):
        assert http.request(method, "/echo/x").json()["method"] == method


def test_streams_are_relayed_chunk_by_chunk(http, workers):
    http.post("/add_worker", params={"url": workers().url})
    arrivals: list[float] = []
    start = time.monotonic()
    with http.stream("GET", "/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5
    assert arrivals[0] < 0.5 < arrivals[-1] - arrivals[0]  # the first event came long before the last


def test_least_in_flight_spreads_concurrent_requests(router, http, workers):
    a, b = workers(), workers()
    for worker in (a, b):
        http.post("/add_worker", params={"url": worker.url})

    async def burst():
        async with httpx.AsyncClient(base_url=router.url, timeout=30) as client:
            responses = await asyncio.gather(*(client.post("/slow") for _ in range(10)))
        return Counter(r.json()["worker"] for r in responses)

    assert asyncio.run(burst()) == {a.url: 5, b.url: 5}
    counts = {w["url"]: (w["total_requests"], w["in_flight"]) for w in http.get("/workers").json()["workers"]}
    assert counts == {a.url: (5, 0), b.url: (5, 0)}


def test_an_unreachable_worker_is_skipped_and_evicted(http, workers):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    alive = workers()
    http.post("/add_worker", params={"url": dead})
    http.post("/add_worker", params={"url": alive.url})
    answers = [http.post("/slow") for _ in range(4)]
    assert all(r.status_code == 200 and r.json()["worker"] == alive.url for r in answers)
    state = worker_state(http, dead)
    assert not state["healthy"] and "Connect" in state["last_error"]


def test_health_checks_evict_a_failing_worker_and_readmit_it(http, workers):
    flaky, steady = workers(), workers()
    http.post("/add_worker", params={"url": flaky.url})
    http.post("/add_worker", params={"url": steady.url})
    flaky.healthy = False
    wait_until(lambda: not worker_state(http, flaky.url)["healthy"])
    assert {http.post("/slow").json()["worker"] for _ in range(4)} == {steady.url}
    flaky.healthy = True
    wait_until(lambda: worker_state(http, flaky.url)["healthy"])
    assert worker_state(http, flaky.url)["evictions"] == 1


def test_a_restarted_worker_comes_back(http, workers):
    worker = workers()
    http.post("/add_worker", params={"url": worker.url})
    worker.stop()
    wait_until(lambda: not worker_state(http, worker.url)["healthy"])
    assert http.post("/slow").status_code == 503
    workers(worker.port)  # same address, new process
    wait_until(lambda: worker_state(http, worker.url)["healthy"])
    assert http.post("/slow").json()["worker"] == worker.url
