"""``remote_rm``: the reward comes from an HTTP service at ``--rm-url``.

Request: ``POST --rm-url`` with JSON ``{"prompt", "response", "label", "metadata"}`` (Miles sends the
first three; ``metadata`` is extra context a service may ignore). Response: a JSON number, or a JSON
object whose ``--reward-key`` field is the reward (the whole object is kept as ``sample.reward`` so
other fields stay visible to filters and logs).

Transport errors, timeouts, HTTP 429 and 5xx are retried ``--rm-max-retries`` times with exponential
backoff from ``--rm-retry-backoff`` seconds (at most 30 s; the retry loop is the rollout side's one,
``miles_core.rollout.http_post.post_json_with_retries``); any other non-2xx status, a body that is not
JSON, or a missing field is an error at once, naming the URL and what came back.
"""

from __future__ import annotations

from typing import Any

from miles_core.rewards.value import reward_key_flag

__all__ = ["RemoteRewardError", "remote_rm", "reward_from_json"]


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

    from miles_core.rollout.http_post import post_json_with_retries

    url = getattr(args, "rm_url", None)
    if not url:
        raise RemoteRewardError("--rm-type remote_rm needs --rm-url (the reward service's endpoint)")
    reward_key = reward_key_flag(args, evaluation=evaluation)
    payload = {"prompt": sample.prompt, "response": sample.response, "label": sample.label, "metadata": sample.metadata}
    timeout = getattr(args, "rm_timeout", 60.0)

    owns_client = client is None
    client = client or httpx.AsyncClient(timeout=timeout)
    try:
        data = await post_json_with_retries(
            client, url, payload, what=f"--rm-url {url}", error=RemoteRewardError,
            max_retries=int(getattr(args, "rm_max_retries", 3)), backoff=float(getattr(args, "rm_retry_backoff", 0.5)),
            max_wait=30.0, retries_flag="--rm-max-retries", timeout=timeout, timeout_flag="--rm-timeout")
        return reward_from_json(data, url=url, reward_key=reward_key)
    finally:
        if owns_client:
            await client.aclose()
