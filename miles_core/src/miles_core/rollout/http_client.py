"""The rollout's HTTP client: aiohttp underneath, the small httpx surface the rollout code uses.

A rollout keeps hundreds of ``/generate`` requests in flight (``--sglang-server-concurrency`` per engine).
httpx's connection pool scans every connection on every request event, so with a few hundred
connections the client itself became the rollout's bottleneck (two overlapping waves of 128 requests:
0.85 s with httpx, 0.15 s with aiohttp, against the same engine). This class keeps the calls the rollout
makes — ``post(url, json=…, timeout=…)``, ``get(url, timeout=…)``, ``aclose()`` — and answers with an
object that has httpx's ``status_code``, ``is_success``, ``text``, ``json()`` and ``raise_for_status()``.
Transport failures are raised as httpx's own exception types (``httpx.TimeoutException``,
``httpx.TransportError``), so the retry logic in ``http_post.py`` treats both clients alike.
"""

from __future__ import annotations

import json as json_module
from dataclasses import dataclass
from typing import Any

__all__ = ["RolloutHttpClient", "RolloutHttpResponse"]


@dataclass
class RolloutHttpResponse:
    status_code: int
    text: str
    url: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json_module.loads(self.text)

    def raise_for_status(self) -> None:
        if not self.is_success:
            import httpx

            request = httpx.Request("GET", self.url)
            raise httpx.HTTPStatusError(f"HTTP {self.status_code} from {self.url}: {self.text[:200]}",
                                        request=request, response=httpx.Response(self.status_code, request=request))


class RolloutHttpClient:
    """A pooled aiohttp session created lazily inside the running event loop."""

    def __init__(self, *, max_connections: int, connect_timeout: float = 30.0, timeout: float | None = None):
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._session = None

    def _get_session(self):
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=self.connect_timeout),
            )
        return self._session

    async def request(self, method: str, url: str, *, json: Any = None, timeout: float | None = None) -> RolloutHttpResponse:
        import aiohttp
        import httpx

        kwargs: dict[str, Any] = {}
        if json is not None:
            kwargs["json"] = json
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, self.connect_timeout))
        try:
            async with self._get_session().request(method, url, **kwargs) as response:
                text = await response.text()
                return RolloutHttpResponse(response.status, text, url)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"{method} {url}: no answer in time ({exc!r})") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"{method} {url}: {exc}") from exc
        except aiohttp.ClientError as exc:  # reset, server disconnected, payload error
            raise httpx.RemoteProtocolError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def post(self, url: str, *, json: Any = None, timeout: float | None = None) -> RolloutHttpResponse:
        return await self.request("POST", url, json=json, timeout=timeout)

    async def get(self, url: str, *, timeout: float | None = None) -> RolloutHttpResponse:
        return await self.request("GET", url, timeout=timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
