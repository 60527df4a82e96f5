"""An async client for the router: everything :class:`EngineClient` does (proxied to a worker) plus the
router's own worker-management routes."""

from __future__ import annotations

from typing import Any

from miles_core.engines.client import EngineClient


class RouterClient(EngineClient):
    """Calls to a Miles router (SGLang API routes are proxied to a healthy worker)."""

    async def add_worker(self, url: str) -> dict[str, Any]:
        response = await self.request("POST", "/add_worker", params={"url": url})
        return response.json()

    async def remove_worker(self, url: str) -> dict[str, Any]:
        response = await self.request("POST", "/remove_worker", params={"url": url})
        return response.json()

    async def list_workers(self) -> list[str]:
        return list((await self._json("GET", "/list_workers"))["urls"])

    async def workers(self) -> list[dict[str, Any]]:
        """Per-worker health and load (``healthy``, ``in_flight``, ``total_requests``, ``last_error`` …)."""
        return list((await self._json("GET", "/workers"))["workers"])

    async def router_health(self) -> dict[str, Any]:
        return await self._json("GET", "/health")
