"""Stopping in-flight generation once a rollout has what it needs.

The router lists its workers (``GET /list_workers`` → ``{"urls": [...]}``, or the sgl-router shape
``GET /workers`` → ``{"workers": [{"url": ...}]}``); each gets ``POST /abort_request {"abort_all": true}``
directly, not through the router (which would reach only one of them). Requests answer with
``finish_reason: abort`` and whatever they had generated, which a partial rollout resumes later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["list_worker_urls", "abort_all_workers"]

logger = logging.getLogger(__name__)


async def list_worker_urls(client: Any, router_url: str) -> list[str]:
    base = router_url.rstrip("/")
    response = await client.get(f"{base}/list_workers", timeout=10.0)
    if response.status_code == 404:
        response = await client.get(f"{base}/workers", timeout=10.0)
        response.raise_for_status()
        urls = [worker["url"] for worker in response.json().get("workers", [])]
    else:
        response.raise_for_status()
        urls = list(response.json().get("urls", []))
    return [url.split("@")[0] for url in urls]  # dp-aware entries look like http://h:p@rank


async def abort_all_workers(client: Any, router_url: str) -> int:
    """Ask every worker behind the router to abort all requests; the number of workers reached."""
    try:
        urls = await list_worker_urls(client, router_url)
    except Exception as exc:  # noqa: BLE001 - aborting is best effort; the rollout must still finish
        logger.warning("cannot list the router's workers at %s (%s); aborting through the router instead", router_url, exc)
        urls = [router_url]

    async def abort(url: str) -> bool:
        try:
            response = await client.post(f"{url.rstrip('/')}/abort_request", json={"abort_all": True}, timeout=10.0)
            response.raise_for_status()
            return True
        except Exception as exc:  # noqa: BLE001
            logger.warning("abort_request to %s failed: %s", url, exc)
            return False

    results = await asyncio.gather(*(abort(url) for url in urls))
    return sum(results)
