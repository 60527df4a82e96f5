"""The rollout's HTTP client under a rollout's concurrency: httpx vs Miles's aiohttp-backed client.

Two waves of 128 ``/generate`` requests (4 new tokens each) against the embedded engine serving a tiny
Qwen3, the second wave sent 50 ms after the first — what an over-sampling round looks like — directly to
the engine and through the router. Printed: seconds until the last answer of each wave (median of 3).

    python bench/rollout_client.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

WAVE = 128
REPEATS = 3


async def _wave_times(client, url: str) -> tuple[float, float]:
    async def one(seed: int) -> float:
        response = await client.post(f"{url}/generate", json={
            "input_ids": [5, 6, 7, 8, 9, 10], "return_logprob": True,
            "sampling_params": {"temperature": 1.0, "max_new_tokens": 4, "sampling_seed": seed}})
        assert response.status_code == 200, response.text
        return time.perf_counter()

    start_first = time.perf_counter()
    first = [asyncio.create_task(one(i)) for i in range(WAVE)]
    await asyncio.sleep(0.05)
    start_second = time.perf_counter()
    second = [asyncio.create_task(one(WAVE + i)) for i in range(WAVE)]
    return max(await asyncio.gather(*first)) - start_first, max(await asyncio.gather(*second)) - start_second


async def _measure(make_client, url: str) -> tuple[float, float]:
    runs = []
    for _ in range(REPEATS):
        client = make_client()
        try:
            runs.append(await _wave_times(client, url))
        finally:
            await client.aclose()
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> int:
    import httpx
    from miles_core.engines.local import start_engine
    from miles_core.rollout.http_client import RolloutHttpClient
    from miles_core.router.local import start_router
    from miles_models_qwen.presets import create_checkpoint

    clients = {
        "httpx.AsyncClient": lambda: httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=512)),
        "RolloutHttpClient (aiohttp)": lambda: RolloutHttpClient(max_connections=512),
    }
    with tempfile.TemporaryDirectory(prefix="miles-client-bench-") as tmp:
        model = create_checkpoint("qwen3", "tiny", Path(tmp) / "model", seed=0)
        with start_engine(model, device="cpu", random_seed=0) as engine, \
                start_router(worker_urls=[engine.url]) as router:
            rows = []
            for target, url in (("engine", engine.url), ("router", router.url)):
                for name, make in clients.items():
                    first, second = asyncio.run(_measure(make, url))
                    rows.append((target, name, f"{first:.2f}", f"{second:.2f}"))
    header = ("target", "client", "wave 1 s", "wave 2 s")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    print(f"\n2 waves × {WAVE} /generate requests (4 tokens), the second 50 ms after the first; median of {REPEATS}")
    for i, row in enumerate([header, *rows]):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * width for width in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
