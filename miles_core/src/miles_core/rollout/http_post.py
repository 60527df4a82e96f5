"""POSTing to the router with bounded retries (the generate path's only network code).

Transport errors, timeouts, HTTP 429 and 5xx are retried ``--rollout-http-max-retries`` times with
exponential backoff starting at ``--rollout-http-retry-backoff`` seconds (at most 10 s between
attempts); another 4xx is the request's fault and is not retried. When the rollout has been aborted
the retries stop at once. The caller turns a :class:`GenerateRequestError` into a FAILED sample.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["GenerateRequestError", "RequestAborted", "post_json"]

_BODY_PREVIEW = 300


class GenerateRequestError(RuntimeError):
    """The engine could not be reached or refused the request; the message says what came back."""


class RequestAborted(RuntimeError):
    """The rollout was aborted while the request waited for a retry."""


async def post_json(state: Any, path: str, payload: dict[str, Any]) -> Any:
    """``POST {state.router_url}{path}`` with retries; the decoded JSON answer."""
    import httpx

    args = state.args
    url = state.router_url.rstrip("/") + path
    max_retries = int(getattr(args, "rollout_http_max_retries", 5))
    backoff = float(getattr(args, "rollout_http_retry_backoff", 1.0))
    problem = ""
    for attempt in range(max_retries + 1):
        if attempt:
            await asyncio.sleep(min(backoff * 2 ** (attempt - 1), 10.0))
        if state.aborted:
            raise RequestAborted(f"POST {url}: the rollout was aborted")
        try:
            response = await state.client.post(url, json=payload)
        except httpx.TransportError as exc:  # connection refused/reset, timeouts
            problem = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            problem = f"HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}"
            continue
        if not response.is_success:
            raise GenerateRequestError(f"POST {url} answered HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}")
        try:
            return response.json()
        except ValueError:
            raise GenerateRequestError(f"POST {url} answered a body that is not JSON: {response.text[:_BODY_PREVIEW]!r}") from None
    raise GenerateRequestError(
        f"POST {url} failed after {max_retries + 1} attempts (--rollout-http-max-retries): {problem}"
    )
