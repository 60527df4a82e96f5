"""The engine endpoints weight sync uses (SGLang's HTTP API, also served by the embedded engine).

Calls to several engines run concurrently (one thread each): a distributed broadcast needs every
engine to be inside its ``/update_weights_from_distributed`` call while the trainer sends. Every
failure names the engine, so a user with eight engines knows which one to look at.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

__all__ = ["WeightSyncError", "EngineCaller"]


class WeightSyncError(RuntimeError):
    """A weight update failed or left an engine on the wrong version; the message names the engine."""


class EngineCaller:
    """POST/GET helpers against a fixed list of engine base URLs."""

    def __init__(self, urls: list[str], *, timeout_s: float = 600.0) -> None:
        if not urls:
            raise ValueError("no engine URLs to update")
        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=30.0), trust_env=False)
        self._pool = ThreadPoolExecutor(max_workers=max(len(self.urls), 1), thread_name_prefix="weight-sync")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> EngineCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, url: str, path: str, payload: dict[str, Any] | bytes | None = None, *,
             check_success: bool = True) -> Any:
        """POST ``payload`` (a dict, or an already encoded JSON body) to ``url + path``; raise
        :class:`WeightSyncError` naming the engine on failure."""
        try:
            if isinstance(payload, bytes):
                response = self._client.post(url + path, content=payload,
                                             headers={"content-type": "application/json"})
            else:
                response = self._client.post(url + path, json=payload or {})
        except httpx.HTTPError as exc:
            raise WeightSyncError(f"engine {url}: {path} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise WeightSyncError(f"engine {url}: {path} returned HTTP {response.status_code}: {response.text[:500]}")
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if check_success and isinstance(body, dict) and body.get("success") is False:
            raise WeightSyncError(f"engine {url}: {path} reported failure: {body.get('message', body)}")
        return body

    def get(self, url: str, path: str) -> Any:
        try:
            response = self._client.get(url + path)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeightSyncError(f"engine {url}: GET {path} failed: {type(exc).__name__}: {exc}") from exc

    def submit_all(self, path: str, payload: dict[str, Any] | bytes | list[dict[str, Any]] | None = None) -> list:
        """Start the same POST (or one payload per engine) on every engine; returns futures."""
        payloads = payload if isinstance(payload, list) else [payload] * len(self.urls)
        return [self._pool.submit(self.post, url, path, p) for url, p in zip(self.urls, payloads, strict=True)]

    @staticmethod
    def wait_all(futures: list) -> list:
        """Wait for every future; the first error (naming its engine) is raised after all finished."""
        results, errors = [], []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - re-raised below with every engine waited for
                errors.append(exc)
        if errors:
            raise errors[0]
        return results

    def post_all(self, path: str, payload: dict[str, Any] | bytes | list[dict[str, Any]] | None = None) -> list:
        return self.wait_all(self.submit_all(path, payload))

    def weight_versions(self) -> dict[str, str]:
        return {url: str(self.get(url, "/get_weight_version").get("weight_version")) for url in self.urls}

    def check_versions(self, expected: str) -> None:
        """Every engine must report ``expected``; else an error naming the engines that do not."""
        wrong = {url: v for url, v in self.weight_versions().items() if v != str(expected)}
        if wrong:
            listing = ", ".join(f"{url} reports {v!r}" for url, v in wrong.items())
            raise WeightSyncError(f"after the weight update to version {expected!r}: {listing}")
