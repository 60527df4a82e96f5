"""The rollout's aiohttp-backed client: httpx's surface and httpx's exception types."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from miles_core.engines.process import free_port
from miles_core.rollout.http_client import RolloutHttpClient


def test_post_and_get_answer_like_httpx(router):
    async def go():
        client = RolloutHttpClient(max_connections=8)
        try:
            listed = await client.get(f"{router.url}/list_workers", timeout=5.0)
            answer = await client.post(f"{router.url}/generate", json={"input_ids": [5, 6], "sampling_params": {
                "max_new_tokens": 2, "sampling_seed": 0}})
            missing = await client.get(f"{router.url}/no-such-path")
        finally:
            await client.aclose()
        return listed, answer, missing

    listed, answer, missing = asyncio.run(go())
    assert listed.is_success and listed.json() == {"urls": [router.url]}
    assert answer.status_code == 200 and "meta_info" in answer.json()
    assert missing.status_code == 404 and not missing.is_success
    with pytest.raises(httpx.HTTPStatusError, match="HTTP 404"):
        missing.raise_for_status()


def test_connection_refused_is_an_httpx_transport_error():
    async def go():
        client = RolloutHttpClient(max_connections=2, connect_timeout=2.0)
        try:
            await client.post(f"http://127.0.0.1:{free_port()}/generate", json={})
        finally:
            await client.aclose()

    with pytest.raises(httpx.TransportError, match="POST http://127.0.0.1"):
        asyncio.run(go())
