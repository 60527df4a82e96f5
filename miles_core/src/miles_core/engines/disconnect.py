"""Stop work for HTTP clients that hang up (shared by the embedded engine and the router).

Starlette does not cancel a plain (non-streaming) endpoint when its client disconnects, so a long
generation would run to the end for nobody. :func:`until_disconnect` awaits the work while polling the
connection, and cancels the work as soon as the client is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

POLL_INTERVAL_S = 0.5


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready."""


async def until_disconnect(request: Any, work: Awaitable[Any], poll_interval: float = POLL_INTERVAL_S) -> Any:
    """Await ``work``; cancel it and raise :class:`ClientDisconnected` if ``request``'s client leaves first."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_interval)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise ClientDisconnected()
    finally:
        if not task.done():
            task.cancel()
