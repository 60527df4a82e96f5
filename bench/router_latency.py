"""Latency the router adds to small requests, against calling the engine directly.

One embedded engine (tiny Qwen3) and the router in front of it run as separate processes on loopback.
For each kind of small request, ``--requests`` calls go to the engine and the same number through the
router, interleaved one by one (so load and noise hit both equally), from one keep-alive HTTP client;
the table shows p50 and p99 of each path and of the difference. Request kinds:

- ``GET /get_model_info``: no model work, pure HTTP and proxy cost;
- ``POST /generate`` with one new token on a short prompt: the smallest rollout request.

Run: ``python bench/router_latency.py [--requests 500]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from miles_core.engines.local import start_engine
from miles_core.router.local import start_router

KINDS = {
    "GET /get_model_info": ("GET", "/get_model_info", None),
    "POST /generate (1 token)": ("POST", "/generate",
                                 {"text": "Hello", "sampling_params": {"max_new_tokens": 1, "temperature": 0}}),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(client: httpx.Client, url: str, method: str, path: str, body) -> float:
    start = time.perf_counter()
    response = client.request(method, url + path, json=body)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed * 1000


def measure(engine_url: str, router_url: str, requests: int) -> list[tuple[str, list[float], list[float]]]:
    rows = []
    with httpx.Client(timeout=60, trust_env=False) as client:
        for name, (method, path, body) in KINDS.items():
            for _ in range(20):  # warm-up: connections, first forward pass
                timed(client, engine_url, method, path, body)
                timed(client, router_url, method, path, body)
            direct, routed = [], []
            for _ in range(requests):
                direct.append(timed(client, engine_url, method, path, body))
                routed.append(timed(client, router_url, method, path, body))
            rows.append((name, direct, routed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--hf-checkpoint", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="miles-bench-") as scratch:
        checkpoint = args.hf_checkpoint
        if checkpoint is None:
            from miles_models_qwen.presets import create_checkpoint

            checkpoint = str(create_checkpoint("qwen3", "tiny", Path(scratch) / "model", seed=0))
        with start_engine(checkpoint, device="cpu", random_seed=0) as engine, \
                start_router(worker_urls=[engine.url], health_check_interval=30) as router:
            rows = measure(engine.url, router.url, args.requests)

    print(f"\n{args.requests} sequential requests per path, one keep-alive client, milliseconds")
    print(f"{'request':<26} | {'direct p50':>10} | {'router p50':>10} | {'added p50':>9} | "
          f"{'direct p99':>10} | {'router p99':>10} | {'added p99':>9}")
    print("-" * 102)
    for name, direct, routed in rows:
        added = [r - d for d, r in zip(direct, routed, strict=True)]
        print(f"{name:<26} | {statistics.median(direct):>10.2f} | {statistics.median(routed):>10.2f} | "
              f"{statistics.median(added):>9.2f} | {percentile(direct, 99):>10.2f} | {percentile(routed, 99):>10.2f} | "
              f"{percentile(added, 99):>9.2f}")


if __name__ == "__main__":
    main()
