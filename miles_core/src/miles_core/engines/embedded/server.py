"""SGLang's native HTTP API over an :class:`~miles_core.engines.embedded.engine.EmbeddedEngine`.

Paths, methods, payloads, status codes and response bodies follow SGLang's ``http_server.py`` so that
the router, the rollout code and the weight sync cannot tell this server from an SGLang one. The
OpenAI-compatible ``/v1`` routes live in ``openai_api.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from miles_core.engines.disconnect import ClientDisconnected, until_disconnect
from miles_core.engines.embedded.engine import EmbeddedEngine, EngineUnavailable
from miles_core.engines.embedded.params import RequestError, parse_generate_call
from miles_core.engines.embedded.scheduler import PAUSE_MODES
from miles_core.engines.embedded.weights import WeightUpdateError

logger = logging.getLogger(__name__)

HEALTH_GENERATE_TIMEOUT_S = 20.0


def error_response(status: int, message: str, kind: str | None = None):
    """SGLang's error body: ``{"error": {"message", "type", "code"}}``."""
    return JSONResponse({"error": {"message": message, "type": kind or _status_kind(status), "code": status}},
                        status_code=status)


def _status_kind(status: int) -> str:
    return {400: "BadRequest", 404: "NotFound", 503: "ServiceUnavailable"}.get(status, "InternalServerError")


def sse(payload: Any) -> bytes:
    """One server-sent event as SGLang writes it."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


async def json_body(request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


def create_app(engine: EmbeddedEngine, server_args: dict[str, Any] | None = None):
    """The FastAPI application serving ``engine`` (started and stopped with the app's lifespan)."""
    from miles_core.engines.embedded.openai_api import add_openai_routes

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.shutdown()

    app = FastAPI(title="Miles embedded engine (SGLang-compatible)", lifespan=lifespan)
    app.state.engine = engine
    server_args = dict(server_args or {})

    @app.exception_handler(RequestError)
    async def _bad_request(request, exc: RequestError):
        return error_response(400, str(exc))

    @app.exception_handler(EngineUnavailable)
    async def _unavailable(request, exc: EngineUnavailable):
        return error_response(503, str(exc))

    @app.exception_handler(ClientDisconnected)
    async def _gone(request, exc: ClientDisconnected):
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it

    @app.exception_handler(WeightUpdateError)
    async def _refused(request, exc: WeightUpdateError):
        return error_response(400, str(exc))

    # ------------------------------------------------------------------------------------ health, info

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if engine.scheduler.alive else 503)

    @app.get("/health_generate")
    async def health_generate() -> Response:
        """Generate one token (SGLang's deep health check)."""
        try:
            engine.check_available()
            call = parse_generate_call({"input_ids": [0], "sampling_params": {"max_new_tokens": 1, "temperature": 0}})
            await asyncio.wait_for(engine.generate(call), HEALTH_GENERATE_TIMEOUT_S)
        except (TimeoutError, EngineUnavailable, RuntimeError) as exc:
            logger.warning("health_generate failed: %r", exc)
            return Response(status_code=503)
        return Response(status_code=200)

    @app.get("/get_model_info")
    @app.get("/model_info")
    async def get_model_info() -> dict[str, Any]:
        return {"model_path": engine.model_path, "tokenizer_path": engine.model_path, "is_generation": True,
                "preferred_sampling_params": None, "weight_version": engine.weight_version}

    @app.get("/get_weight_version")
    async def get_weight_version() -> dict[str, Any]:
        return {"weight_version": engine.weight_version}

    @app.get("/get_server_info")
    @app.get("/server_info")
    async def get_server_info() -> dict[str, Any]:
        runner = engine.runner
        return {
            **server_args,
            "model_path": engine.model_path,
            "served_model_name": engine.served_model_name,
            "random_seed": engine.random_seed,
            "device": str(runner.device),
            "dtype": str(runner.dtype).removeprefix("torch."),
            "max_batch_size": engine.scheduler.max_batch_size,
            "context_length": runner.context_length,
            "weight_version": engine.weight_version,
            "engine": "miles-embedded",
            "internal_states": [{**engine.scheduler.load(), **vars(engine.scheduler.stats),
                                 "paused": engine.scheduler.paused,
                                 "memory_released": sorted(engine.memory.released)}],
            "uptime_s": time.time() - engine.started_at,
            "version": _miles_version(),
        }

    @app.get("/get_load")
    async def get_load() -> list[dict[str, int]]:
        return [engine.scheduler.load()]

    @app.api_route("/flush_cache", methods=["GET", "POST"])
    async def flush_cache() -> Response:
        # The embedded engine keeps no prefix cache between requests, so there is nothing stale to drop.
        return Response(content="Cache flushed.\n", status_code=200)

    # ------------------------------------------------------------------------------------ generation

    @app.api_route("/generate", methods=["POST", "PUT"])
    async def generate(request: Request):
        call = parse_generate_call(await json_body(request))
        if not call.stream:
            results = await until_disconnect(request, engine.generate(call))
            return JSONResponse(results if call.batched or len(results) > 1 else results[0])
        chunks = engine.generate_stream(call)
        first = await chunks.__anext__()  # errors before the first token are plain HTTP errors

        async def body() -> AsyncIterator[bytes]:
            try:
                yield sse(first)
                async for chunk in chunks:
                    yield sse(chunk)
                yield SSE_DONE
            finally:
                await chunks.aclose()

        return StreamingResponse(body(), media_type="text/event-stream")

    @app.post("/abort_request")
    async def abort_request(request: Request) -> Response:
        body = await json_body(request)
        engine.abort(body.get("rid"), abort_all=bool(body.get("abort_all", False)))
        return Response(status_code=200)

    @app.post("/pause_generation")
    async def pause_generation(request: Request):
        mode = (await json_body(request)).get("mode") or "retract"
        if mode not in PAUSE_MODES:
            return error_response(400, f"mode must be one of {', '.join(PAUSE_MODES)}, got {mode!r}")
        await asyncio.wrap_future(engine.scheduler.pause(mode))
        return {"message": "Generation paused successfully.", "status": "ok"}

    @app.post("/continue_generation")
    async def continue_generation():
        await asyncio.wrap_future(engine.scheduler.resume())
        return {"message": "Generation continued successfully.", "status": "ok"}

    # ------------------------------------------------------------------------------------ weights

    def answer(result: dict[str, Any]) -> JSONResponse:
        return JSONResponse(result, status_code=200 if result["success"] else 400)

    @app.post("/update_weights_from_disk")
    async def update_weights_from_disk(request: Request):
        body = await json_body(request)
        if not body.get("model_path"):
            raise RequestError("model_path is required")
        result = await engine.update_weights_from_disk(body["model_path"], _version(body))
        return answer({**result, "num_paused_requests": 0})

    @app.post("/update_weights_from_tensor")
    async def update_weights_from_tensor(request: Request):
        body = await json_body(request)
        serialized = body.get("serialized_named_tensors")
        if not isinstance(serialized, list) or not all(isinstance(s, str) for s in serialized):
            raise RequestError("serialized_named_tensors must be a list of base64 strings")
        return answer(await engine.update_weights_from_tensor(serialized, body.get("load_format"), _version(body)))

    @app.post("/init_weights_update_group")
    async def init_weights_update_group(request: Request):
        body = await json_body(request)
        missing = [k for k in ("master_address", "master_port", "rank_offset", "world_size", "group_name")
                   if body.get(k) is None]
        if missing:
            raise RequestError(f"missing field(s): {', '.join(missing)}")
        return answer(await engine.init_weights_update_group(
            str(body["master_address"]), int(body["master_port"]), int(body["rank_offset"]),
            int(body["world_size"]), str(body["group_name"]), str(body.get("backend") or "nccl")))

    @app.post("/update_weights_from_distributed")
    async def update_weights_from_distributed(request: Request):
        body = await json_body(request)
        missing = [k for k in ("names", "dtypes", "shapes") if body.get(k) is None]
        if missing:
            raise RequestError(f"missing field(s): {', '.join(missing)}")
        return answer(await engine.update_weights_from_distributed(
            list(body["names"]), list(body["dtypes"]), [list(s) for s in body["shapes"]],
            str(body.get("group_name") or "weight_update_group"), _version(body)))

    @app.post("/destroy_weights_update_group")
    async def destroy_weights_update_group(request: Request):
        body = await json_body(request)
        return answer(await engine.destroy_weights_update_group(str(body.get("group_name") or "weight_update_group")))

    @app.post("/update_weight_version")
    async def update_weight_version(request: Request):
        body = await json_body(request)
        if body.get("new_version") is None:
            raise RequestError("new_version is required")
        await engine.set_weight_version(str(body["new_version"]), bool(body.get("abort_all_requests", False)))
        return {"success": True, "message": f"Weight version updated to {body['new_version']}",
                "new_version": str(body["new_version"])}

    @app.api_route("/release_memory_occupation", methods=["GET", "POST"])
    async def release_memory_occupation(request: Request):
        tags = await engine.release_memory((await json_body(request)).get("tags"))
        return {"success": True, "message": f"Released {', '.join(tags)}.", "tags": tags}

    @app.api_route("/resume_memory_occupation", methods=["GET", "POST"])
    async def resume_memory_occupation(request: Request):
        tags = await engine.resume_memory((await json_body(request)).get("tags"))
        return {"success": True, "message": f"Resumed {', '.join(tags)}.", "tags": tags}

    add_openai_routes(app, engine)
    return app


def _version(body: dict[str, Any]) -> str | None:
    value = body.get("weight_version")
    return None if value is None else str(value)


def _miles_version() -> str:
    from miles_core import __version__

    return __version__
