"""POSTing JSON with bounded retries: the one retry loop of the rollout side (generate and ``remote_rm``).

Transport errors, timeouts, HTTP 429 and 5xx are retried a bounded number of times with exponential
backoff; another 4xx is the request's fault and is not retried. :func:`post_json` is the generate path's
use of it: ``--rollout-http-max-retries`` retries starting at ``--rollout-http-retry-backoff`` seconds
(at most 10 s between attempts), stopping at once when the rollout has been aborted. The caller turns a
:class:`GenerateRequestError` into a FAILED sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["GenerateRequestError", "RequestAborted", "post_json", "post_json_with_retries"]

_BODY_PREVIEW = 300
_CLIENT_DEFAULT: Any = object()  # no per-request timeout argument: the client's own applies


class GenerateRequestError(RuntimeError):
    """The engine could not be reached or refused the request; the message says what came back."""


class RequestAborted(RuntimeError):
    """The rollout was aborted while the request waited for a retry."""


async def post_json_with_retries(
    client: Any,
    url: str,
    payload: Any,
    *,
    what: str,
    error: type[Exception],
    max_retries: int,
    backoff: float,
    max_wait: float,
    retries_flag: str,
    timeout: Any = _CLIENT_DEFAULT,
    timeout_flag: str | None = None,
    aborted: Callable[[], bool] | None = None,
) -> Any:
    """``POST url`` with ``payload`` as JSON through ``client`` (a ``RolloutHttpClient`` or an ``httpx.AsyncClient``); the decoded JSON answer.

    Attempt ``k`` (from 1) of the ``max_retries`` retries waits ``min(backoff · 2^(k−1), max_wait)`` seconds
    first. A non-retried status, a body that is not JSON, or running out of retries raises ``error``.

    :param what: how messages name the target (``"POST http://…"``, ``"--rm-url http://…"``).
    :param retries_flag: the flag named when the retries run out.
    :param timeout: per-request timeout passed to ``client.post`` (left out: the client's default).
    :param timeout_flag: when given, a timeout is reported as "no answer within N s (FLAG)".
    :param aborted: checked before every attempt; when it returns true, :class:`RequestAborted` is raised.
    """
    import httpx

    post_kwargs = {} if timeout is _CLIENT_DEFAULT else {"timeout": timeout}
    problem = ""
    for attempt in range(max_retries + 1):
        if attempt:
            await asyncio.sleep(min(backoff * 2 ** (attempt - 1), max_wait))
        if aborted is not None and aborted():
            raise RequestAborted(f"{what}: the rollout was aborted")
        try:
            response = await client.post(url, json=payload, **post_kwargs)
        except httpx.TimeoutException as exc:
            problem = (f"no answer within {timeout} s ({timeout_flag})" if timeout_flag
                       else f"{type(exc).__name__}: {exc}")
            continue
        except httpx.TransportError as exc:  # connection refused/reset
            problem = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            problem = f"HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}"
            continue
        if not response.is_success:
            raise error(f"{what} answered HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}")
        try:
            return response.json()
        except ValueError:
            raise error(f"{what} answered a body that is not JSON: {response.text[:_BODY_PREVIEW]!r}") from None
    raise error(f"{what} failed after {max_retries + 1} attempts ({retries_flag}): {problem}")


async def post_json(state: Any, path: str, payload: dict[str, Any]) -> Any:
    """``POST {state.router_url}{path}`` with the generate path's retries; the decoded JSON answer."""
    args = state.args
    url = state.router_url.rstrip("/") + path
    return await post_json_with_retries(
        state.client, url, payload, what=f"POST {url}", error=GenerateRequestError,
        max_retries=int(getattr(args, "rollout_http_max_retries", 5)),
        backoff=float(getattr(args, "rollout_http_retry_backoff", 1.0)), max_wait=10.0,
        retries_flag="--rollout-http-max-retries", aborted=lambda: state.aborted)
