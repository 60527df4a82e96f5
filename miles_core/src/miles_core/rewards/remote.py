"""``remote_rm``: the reward comes from an HTTP service at ``--rm-url``.

Request: ``POST --rm-url`` with JSON ``{"prompt", "response", "label", "metadata"}`` (Miles sends the
first three; ``metadata`` is extra context a service may ignore). Response: a JSON number, or a JSON
object whose ``--reward-key`` field is the reward (the whole object is kept as ``sample.reward`` so
other fields stay visible to filters and logs).

Transport errors, timeouts, HTTP 429 and 5xx are retried ``--rm-max-retries`` times with exponential
backoff from ``--rm-retry-backoff`` seconds; any other non-2xx status, a body that is not JSON, or a
missing field is an error at once, naming the URL and what came back.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RemoteRewardError", "remote_rm", "reward_from_json"]

_BODY_PREVIEW = 300


class RemoteRewardError(RuntimeError):
    """The reward service answered something that is not a reward, or could not be reached."""


def reward_from_json(data: Any, *, url: str, reward_key: str | None) -> float | dict[str, Any]:
    """Check the service's JSON answer: a number, or an object holding ``reward_key``."""
    if isinstance(data, bool) or isinstance(data, (int, float)):
        return float(data)
    if isinstance(data, dict):
        if not reward_key:
            raise RemoteRewardError(
                f"--rm-url {url} answered a JSON object with fields {sorted(data)}; set --reward-key to the field "
                "that holds the reward"
            )
        if reward_key not in data:
            raise RemoteRewardError(
                f"--rm-url {url} answered without the field {reward_key!r} (--reward-key); fields: {sorted(data)}"
            )
        value = data[reward_key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RemoteRewardError(f"--rm-url {url}: field {reward_key!r} is {value!r}, not a number")
        return data
    raise RemoteRewardError(f"--rm-url {url} answered {type(data).__name__} {data!r:.100}; expected a number or an object")


async def remote_rm(args: Any, sample: Any, *, evaluation: bool = False, client: Any = None, **kwargs: Any) -> Any:
    import httpx

    url = getattr(args, "rm_url", None)
    if not url:
        raise RemoteRewardError("--rm-type remote_rm needs --rm-url (the reward service's endpoint)")
    reward_key = (getattr(args, "eval_reward_key", None) if evaluation else None) or getattr(args, "reward_key", None)
    payload = {"prompt": sample.prompt, "response": sample.response, "label": sample.label, "metadata": sample.metadata}
    max_retries = int(getattr(args, "rm_max_retries", 3))
    backoff = float(getattr(args, "rm_retry_backoff", 0.5))
    timeout = getattr(args, "rm_timeout", 60.0)

    owns_client = client is None
    client = client or httpx.AsyncClient(timeout=timeout)
    try:
        last_problem = ""
        for attempt in range(max_retries + 1):
            if attempt:
                await asyncio.sleep(min(backoff * 2 ** (attempt - 1), 30.0))
            try:
                response = await client.post(url, json=payload, timeout=timeout)
            except httpx.TimeoutException:
                last_problem = f"no answer within {timeout} s (--rm-timeout)"
                continue
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last_problem = f"HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}"
                continue
            if not response.is_success:
                raise RemoteRewardError(f"--rm-url {url} answered HTTP {response.status_code}: {response.text[:_BODY_PREVIEW]}")
            try:
                data = response.json()
            except ValueError:
                raise RemoteRewardError(f"--rm-url {url} answered a body that is not JSON: {response.text[:_BODY_PREVIEW]!r}") from None
            return reward_from_json(data, url=url, reward_key=reward_key)
        raise RemoteRewardError(f"--rm-url {url} failed after {max_retries + 1} attempts (--rm-max-retries): {last_problem}")
    finally:
        if owns_client:
            await client.aclose()
