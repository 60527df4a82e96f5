"""The router: a FastAPI proxy in front of SGLang-compatible engines.

Own routes: ``POST /add_worker`` and ``POST /remove_worker`` (URL in ``?url=`` / ``?worker_url=`` or a JSON
body ``{"url"}``, as Miles's router), ``GET /list_workers`` → ``{"urls": [...]}``, ``GET /workers``
(per-worker health, in-flight and total counts: the router's metrics) and ``GET /health`` (the router
itself). Every other path and method is proxied to one worker chosen by the pool's policy:

- the request goes out with its method, path, query, headers and body unchanged (minus hop-by-hop
  headers), and the worker's status, headers and body come back unchanged, streamed chunk by chunk, so
  SSE streams and SGLang's ``meta_info`` pass through untouched; ``x-miles-worker`` names the worker;
- a request whose worker cannot be reached, or drops the connection before answering, is sent to
  another worker (the client has seen nothing, so re-sending a generation is safe) and the worker is
  evicted until its health checks pass again;
- with no healthy worker left, the answer is 503 with a JSON error naming the workers and their errors.

A background task checks ``GET {worker}/health`` of every worker every ``health_check_interval``
seconds (after ``health_check_first_wait``), evicting and re-admitting workers (see ``pool.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from multidict import CIMultiDict

from miles_core.engines.disconnect import ClientDisconnected, until_disconnect
from miles_core.router.pool import WorkerPool, WorkerState

logger = logging.getLogger(__name__)

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "trailers", "transfer-encoding", "upgrade"}
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length"}
#: Errors raised before the worker answered anything: the request can go to another worker.
_NOT_ANSWERED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ServerDisconnectedError,
                 aiohttp.ClientOSError)
#: Errors of a worker that broke off an answer it had started: nothing can be re-sent.
_BROKE_OFF = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)


@dataclass
class RouterConfig:
    """Everything the router needs to know (``miles router --help`` explains each flag)."""

    worker_urls: list[str] = field(default_factory=list)
    policy: str = "least_in_flight"
    health_check_interval: float = 30.0
    health_check_timeout: float = 5.0
    health_check_first_wait: float = 0.0
    health_check_endpoint: str = "/health"
    failure_threshold: int = 3
    success_threshold: int = 1
    request_timeout: float | None = None
    connect_timeout: float = 5.0
    max_connections: int = 1024


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_router_app(config: RouterConfig) -> FastAPI:
    """The router application; its lifespan owns the HTTP clients and the health-check task."""
    pool = WorkerPool(failure_threshold=config.failure_threshold, success_threshold=config.success_threshold,
                      policy=config.policy)
    for url in config.worker_urls:
        pool.add(url)
    clients: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The proxy client is aiohttp: httpx's connection pool scans every connection for every request,
        # which made the router the bottleneck of a rollout at a few hundred concurrent requests.
        clients["proxy"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.max_connections, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout, sock_read=config.request_timeout),
            auto_decompress=False,  # relay the worker's bytes as they are
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        clients["health"] = httpx.AsyncClient(timeout=config.health_check_timeout, trust_env=False)
        checker = asyncio.create_task(_health_loop(pool, clients["health"], config))
        try:
            yield
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)
            await clients["proxy"].close()
            await clients["health"].aclose()

    app = FastAPI(title="Miles router", lifespan=lifespan)
    app.state.pool = pool

    # ------------------------------------------------------------------------------------ own routes

    async def worker_url_of(request: Request) -> str | None:
        url = request.query_params.get("url") or request.query_params.get("worker_url")
        if url:
            return url
        try:
            body = await request.json()
        except ValueError:
            return None
        return (body.get("url") or body.get("worker_url")) if isinstance(body, dict) else None

    @app.post("/add_worker")
    async def add_worker(request: Request):
        url = await worker_url_of(request)
        if not url:
            return _error(400, "add_worker needs the worker URL: ?url=http://host:port or {\"url\": ...}",
                          "invalid_request")
        try:
            worker = pool.add(url)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request")
        logger.info("worker added: %s (%d registered)", worker.url, len(pool.urls()))
        return {"status": "success", "url": worker.url, "worker_urls": pool.urls()}

    @app.post("/remove_worker")
    async def remove_worker(request: Request):
        url = await worker_url_of(request)
        if not url:
            return _error(400, "remove_worker needs the worker URL: ?url=http://host:port or {\"url\": ...}",
                          "invalid_request")
        try:
            removed = pool.remove(url)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request")
        if not removed:
            return _error(404, f"no worker {url!r} is registered; registered: {pool.urls()}", "not_found")
        logger.info("worker removed: %s", url)
        return {"status": "success", "worker_urls": pool.urls()}

    @app.get("/list_workers")
    async def list_workers():
        return {"urls": pool.urls()}

    @app.get("/workers")
    async def workers():
        return {"policy": pool.policy, "workers": [w.as_dict() for w in pool.states()]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "workers": len(pool.urls()), "healthy_workers": len(pool.healthy())}

    # ------------------------------------------------------------------------------------ proxy

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    async def proxy(request: Request, path: str):
        body = await request.body()
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        target = raw_path.decode("latin-1")
        if request.url.query:
            target += "?" + request.url.query
        headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                              if k.decode("latin-1").lower() not in _NOT_FORWARDED)
        session = clients["proxy"]
        tried: list[str] = []
        errors: list[str] = []
        while True:
            worker = pool.select(exclude=tried)
            if worker is None:
                return _no_worker(pool, request.method, target, errors)
            tried.append(worker.url)
            pool.acquire(worker)
            upstream = _send(session, request.method, worker.url + target, headers, body)
            try:
                response = await until_disconnect(request, upstream)
            except ClientDisconnected:  # closing the upstream connection lets the worker abort the work
                pool.release(worker)
                return Response(status_code=499)
            except _NOT_ANSWERED as exc:
                pool.release(worker, failed=True)
                reason = f"{type(exc).__name__}: {exc}"
                errors.append(f"{worker.url}: {reason}")
                if pool.mark_unreachable(worker.url, reason):
                    logger.warning("worker evicted (request failed before an answer): %s: %s", worker.url, reason)
                continue
            except TimeoutError as exc:
                pool.release(worker, failed=True)
                return _error(504, f"{request.method} {target}: worker {worker.url} timed out: {exc!r}",
                              "upstream_timeout")
            except BaseException:
                pool.release(worker, failed=True)
                raise
            return StreamingResponse(
                _relay(response, pool, worker), status_code=response.status,
                headers={**_response_headers(response), "x-miles-worker": worker.url},
            )

    return app


async def _send(session: aiohttp.ClientSession, method: str, url: str, headers: CIMultiDict,
                body: bytes) -> aiohttp.ClientResponse:
    return await session.request(method, url, headers=headers, data=body, allow_redirects=False)


def _response_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}


async def _relay(response: aiohttp.ClientResponse, pool: WorkerPool, worker: WorkerState) -> AsyncIterator[bytes]:
    """The worker's body, chunk by chunk; the in-flight count drops when it ends or the client leaves."""
    failed = False
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except _BROKE_OFF as exc:  # the worker died mid-answer: nothing can be re-sent now
        failed = True
        logger.warning("worker %s broke off a response: %r", worker.url, exc)
        raise
    finally:
        response.release()
        pool.release(worker, failed=failed)


def _no_worker(pool: WorkerPool, method: str, target: str, errors: list[str]) -> JSONResponse:
    states = pool.states()
    detail = "; ".join(errors) or "; ".join(f"{w.url}: {w.last_error or 'unhealthy'}" for w in states) or "none"
    return _error(503, f"no healthy worker to serve {method} {target}: {len(states)} registered, "
                       f"{len(pool.healthy())} healthy ({detail})", "no_healthy_worker")


async def _health_loop(pool: WorkerPool, client: httpx.AsyncClient, config: RouterConfig) -> None:
    await asyncio.sleep(config.health_check_first_wait)
    while True:
        await asyncio.gather(*(_check(pool, client, url, config.health_check_endpoint) for url in pool.urls()))
        await asyncio.sleep(config.health_check_interval)


async def _check(pool: WorkerPool, client: httpx.AsyncClient, url: str, endpoint: str) -> None:
    try:
        response = await client.get(url + endpoint)
        ok, error = response.status_code == 200, f"health check answered HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, error = False, f"health check failed: {type(exc).__name__}: {exc}"
    change = pool.record_check(url, ok, None if ok else error)
    if change == "evicted":
        logger.warning("worker evicted after %d failed health checks: %s (%s)", pool.failure_threshold, url, error)
    elif change == "readmitted":
        logger.info("worker re-admitted, health checks pass again: %s", url)

