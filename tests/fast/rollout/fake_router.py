"""A scripted SGLang-shaped server on loopback: it is its own router (``/list_workers`` lists itself).

``/generate`` answers deterministically from ``sampling_seed``: ``1 + seed % 5`` digit tokens (clamped
to ``max_new_tokens``; ``finish_reason`` "length" when clamped, else "stop"), log-prob ``-0.1 * (j+1)``
for the j-th token. Requests whose prompt text contains one of ``hang_markers`` wait until
``/abort_request`` and then answer one token with ``finish_reason`` "abort", as SGLang does for an
aborted request. ``fail_statuses`` makes the next requests answer those HTTP statuses.
"""

from __future__ import annotations

import asyncio
import string
import threading
import time
from typing import Any

VOCAB = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + list(string.printable)
DIGIT_IDS = [VOCAB.index(d) for d in "0123456789"]


class FakeRouter:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.hang_markers: tuple[str, ...] = ()
        self.fail_statuses: list[int] = []
        self.aborts = 0
        self._abort = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---------------------------------------------------------------------------------------- app

    def _app(self):
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.get("/list_workers")
        async def list_workers():
            return {"urls": [self.url]}

        @app.post("/abort_request")
        async def abort_request(body: dict):
            self.aborts += 1
            self._abort.set()
            return {"success": True}

        @app.post("/generate")
        async def generate(body: dict):
            self.requests.append(body)
            if self.fail_statuses:
                return JSONResponse({"error": "scripted failure"}, status_code=self.fail_statuses.pop(0))
            params = body["sampling_params"]
            prompt = "".join(VOCAB[i] for i in body["input_ids"])
            if any(marker in prompt for marker in self.hang_markers):
                deadline = time.monotonic() + 20
                while not self._abort.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                return self._answer(params, count=1, finish="abort")
            seed = int(params.get("sampling_seed") or 0)
            wanted = 1 + seed % 5
            limit = params.get("max_new_tokens", 128)
            count = min(wanted, limit)
            return self._answer(params, count=count, finish="length" if count < wanted else "stop")

        return app

    def _answer(self, params: dict, count: int, finish: str) -> dict:
        seed = int(params.get("sampling_seed") or 0)
        ids = [DIGIT_IDS[(seed + j) % 10] for j in range(count)]
        return {
            "text": "".join(VOCAB[i] for i in ids),
            "meta_info": {
                "output_token_logprobs": [[-0.1 * (j + 1), tid, None] for j, tid in enumerate(ids)],
                "finish_reason": {"type": finish},
                "weight_version": "0",
                "prompt_tokens": 0,
                "completion_tokens": count,
            },
        }

    # ---------------------------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        self.requests.clear()
        self.hang_markers = ()
        self.fail_statuses = []
        self.aborts = 0
        self._abort.clear()

    def start(self) -> FakeRouter:
        import uvicorn

        config = uvicorn.Config(self._app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake router did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._abort.set()
            self._server.should_exit = True
            self._thread.join(timeout=10)
