"""An async client for SGLang's HTTP API, the same for SGLang servers, the embedded engine and the router.

Every method maps to one documented SGLang endpoint and returns its JSON (or ``None`` where SGLang
answers an empty body). Errors name the engine URL, the path, the status and the response body:

- :class:`EngineHTTPError` — the server answered with a 4xx/5xx status (``.status``, ``.body``);
- :class:`EngineConnectionError` — it could not be reached, after retrying with exponential backoff.

Only failures to *connect* are retried (the request never reached the server, so retrying any endpoint
is safe); a connection lost mid-request is reported at once, since a weight update or a generation may
already have started.

Example::

    async with EngineClient("http://127.0.0.1:30000") as engine:
        out = await engine.generate(input_ids=[1, 2, 3], sampling_params={"max_new_tokens": 8},
                                    return_logprob=True)
        print(out["text"], out["meta_info"]["output_token_logprobs"])
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

logger = logging.getLogger(__name__)

_RETRIED = (httpx.ConnectError, httpx.ConnectTimeout)


class EngineError(RuntimeError):
    """Base class of the client's errors."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class EngineHTTPError(EngineError):
    """The engine answered with an error status."""

    def __init__(self, url: str, method: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}", url)
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class EngineConnectionError(EngineError):
    """The engine could not be reached (or the connection broke)."""


class EngineClient:
    """Typed async calls to one SGLang-compatible server (an engine or a router)."""

    def __init__(self, base_url: str, *, timeout: float | None = None, connect_timeout: float = 5.0,
                 max_retries: int = 5, backoff: float = 0.2, max_backoff: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            trust_env=False,
        )

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------------------------------ transport

    async def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None,
                      check: bool = True) -> httpx.Response:
        """Send one request, retrying connection failures with exponential backoff."""
        url = self.base_url + path
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._client.request(method, url, json=json_body, params=params)
                break
            except _RETRIED as exc:
                if attempt == self.max_retries:
                    raise EngineConnectionError(
                        f"{method} {url}: cannot connect after {attempt + 1} attempt(s): {exc!r}", url) from exc
                logger.debug("%s %s: %r; retrying in %.2fs", method, url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
            except httpx.TransportError as exc:
                raise EngineConnectionError(f"{method} {url}: {type(exc).__name__}: {exc}", url) from exc
        if check and response.status_code >= 400:
            raise EngineHTTPError(url, method, response.status_code, response.text)
        return response

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.request(method, path, json_body=body)
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text

    # ------------------------------------------------------------------------------------ generation

    @staticmethod
    def generate_payload(*, text: str | list[str] | None = None, input_ids: list[int] | list[list[int]] | None = None,
                         sampling_params: dict | list[dict] | None = None, return_logprob: bool | None = None,
                         logprob_start_len: int | None = None, top_logprobs_num: int | None = None,
                         rid: str | list[str] | None = None, stream: bool = False, **extra: Any) -> dict[str, Any]:
        """SGLang's ``GenerateReqInput`` with the unset fields left out."""
        if (text is None) == (input_ids is None):
            raise ValueError("give exactly one of text or input_ids")
        payload: dict[str, Any] = {"text": text} if text is not None else {"input_ids": input_ids}
        for key, value in (("sampling_params", sampling_params), ("return_logprob", return_logprob),
                           ("logprob_start_len", logprob_start_len), ("top_logprobs_num", top_logprobs_num),
                           ("rid", rid)):
            if value is not None:
                payload[key] = value
        if stream:
            payload["stream"] = True
        payload.update(extra)
        return payload

    async def generate(self, **kwargs: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """``POST /generate``: a dict for one prompt, a list for a batch or ``n > 1`` (see
        :meth:`generate_payload` for the arguments)."""
        return await self._json("POST", "/generate", self.generate_payload(**kwargs))

    async def generate_stream(self, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """``POST /generate`` with ``stream: true``: yields each cumulative chunk until ``[DONE]``."""
        payload = self.generate_payload(stream=True, **kwargs)
        url = self.base_url + "/generate"
        try:
            async with self._client.stream("POST", url, json=payload) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode(errors="replace")
                    raise EngineHTTPError(url, "POST", response.status_code, body)
                async for event in iter_sse(response):
                    yield event
        except httpx.TransportError as exc:
            raise EngineConnectionError(f"POST {url} (stream): {type(exc).__name__}: {exc}", url) from exc

    async def abort_request(self, rid: str | None = None, *, abort_all: bool = False) -> None:
        """``POST /abort_request``: running requests end with ``finish_reason.type == "abort"``."""
        body: dict[str, Any] = {"abort_all": abort_all}
        if rid is not None:
            body["rid"] = rid
        await self._json("POST", "/abort_request", body)

    async def pause_generation(self, mode: str | None = None) -> Any:
        """``POST /pause_generation`` (``mode``: abort, retract or in_place)."""
        return await self._json("POST", "/pause_generation", {} if mode is None else {"mode": mode})

    async def continue_generation(self) -> Any:
        return await self._json("POST", "/continue_generation", {})

    # ------------------------------------------------------------------------------------ health, info

    async def health(self) -> bool:
        """``GET /health`` answered 200 (connection failures count as unhealthy, without retries)."""
        return await self._probe("/health")

    async def health_generate(self) -> bool:
        """``GET /health_generate``: the server generated one token."""
        return await self._probe("/health_generate")

    async def _probe(self, path: str) -> bool:
        try:
            return (await self._client.get(self.base_url + path)).status_code == 200
        except httpx.TransportError:
            return False

    async def wait_healthy(self, timeout: float = 300.0, path: str = "/health") -> None:
        """Poll ``path`` until it answers 200; :class:`EngineConnectionError` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self._probe(path):
            if loop.time() > deadline:
                raise EngineConnectionError(f"{self.base_url}{path} not healthy after {timeout:.0f} s", self.base_url)
            await asyncio.sleep(0.2)

    async def get_model_info(self) -> dict[str, Any]:
        return await self._json("GET", "/get_model_info")

    async def get_server_info(self) -> dict[str, Any]:
        return await self._json("GET", "/get_server_info")

    async def get_weight_version(self) -> str:
        return str((await self._json("GET", "/get_weight_version"))["weight_version"])

    async def flush_cache(self) -> None:
        """``POST /flush_cache`` (SGLang answers 400 while requests are running)."""
        await self.request("POST", "/flush_cache")

    # ------------------------------------------------------------------------------------ weights

    async def update_weights_from_disk(self, model_path: str, *, weight_version: str | None = None,
                                       load_format: str | None = None) -> dict[str, Any]:
        body = _without_none(model_path=model_path, weight_version=weight_version, load_format=load_format)
        return await self._json("POST", "/update_weights_from_disk", body)

    async def update_weights_from_tensor(self, serialized_named_tensors: list[str], *,
                                         load_format: str | None = None, flush_cache: bool = True,
                                         weight_version: str | None = None, **extra: Any) -> dict[str, Any]:
        """On the embedded engine each string is a base64 safetensors bucket (``load_format`` ``safetensors``);
        real SGLang takes its own serialized format (see docs/internal-contracts.md)."""
        body = _without_none(serialized_named_tensors=serialized_named_tensors, load_format=load_format,
                             flush_cache=flush_cache, weight_version=weight_version, **extra)
        return await self._json("POST", "/update_weights_from_tensor", body)

    async def init_weights_update_group(self, *, master_address: str, master_port: int, rank_offset: int,
                                        world_size: int, group_name: str, backend: str) -> dict[str, Any]:
        body = dict(master_address=master_address, master_port=master_port, rank_offset=rank_offset,
                    world_size=world_size, group_name=group_name, backend=backend)
        return await self._json("POST", "/init_weights_update_group", body)

    async def update_weights_from_distributed(self, *, names: list[str], dtypes: list[str], shapes: list[list[int]],
                                              group_name: str, flush_cache: bool = True,
                                              weight_version: str | None = None, **extra: Any) -> dict[str, Any]:
        body = _without_none(names=names, dtypes=dtypes, shapes=shapes, group_name=group_name,
                             flush_cache=flush_cache, weight_version=weight_version, **extra)
        return await self._json("POST", "/update_weights_from_distributed", body)

    async def destroy_weights_update_group(self, group_name: str) -> dict[str, Any]:
        return await self._json("POST", "/destroy_weights_update_group", {"group_name": group_name})

    async def update_weight_version(self, new_version: str, *, abort_all_requests: bool = False) -> dict[str, Any]:
        return await self._json("POST", "/update_weight_version",
                                {"new_version": new_version, "abort_all_requests": abort_all_requests})

    async def release_memory_occupation(self, tags: list[str] | None = None) -> Any:
        return await self._json("POST", "/release_memory_occupation", {} if tags is None else {"tags": tags})

    async def resume_memory_occupation(self, tags: list[str] | None = None) -> Any:
        return await self._json("POST", "/resume_memory_occupation", {} if tags is None else {"tags": tags})

    # ------------------------------------------------------------------------------------ OpenAI API

    async def models(self) -> dict[str, Any]:
        return await self._json("GET", "/v1/models")

    async def completions(self, **body: Any) -> dict[str, Any]:
        return await self._json("POST", "/v1/completions", body)

    async def chat_completions(self, **body: Any) -> dict[str, Any]:
        return await self._json("POST", "/v1/chat/completions", body)


async def iter_sse(response: httpx.Response) -> AsyncIterator[Any]:
    """The JSON payloads of a server-sent-event stream (``data: {...}``), until ``data: [DONE]``."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
