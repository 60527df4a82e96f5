"""OpenAI-compatible routes of the embedded engine: ``/v1/models``, ``/v1/completions``,
``/v1/chat/completions`` (with streaming, usage and optional log-probs).

Requests become the same :class:`~miles_core.engines.embedded.params.GenerateCall` as ``/generate``, so
sampling, seeding and log-prob semantics are identical. As on SGLang, SGLang's extra sampling fields
(``top_k``, ``min_p``, ``min_tokens``, ``stop_token_ids``, ``ignore_eos``, ``skip_special_tokens``,
``no_stop_trim``, ``repetition_penalty``) are accepted in the body (``extra_body`` in the ``openai``
client). Chat prompts use the tokenizer's chat template (``tools`` and ``chat_template_kwargs`` are
passed to it); tool-call parsing and ``response_format`` need SGLang and are refused with a 400.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from miles_core.engines.embedded.engine import EmbeddedEngine
from miles_core.engines.embedded.params import GenerateCall, PromptRequest, RequestError, SamplingParams

_SGLANG_EXTRAS = {"top_k": "top_k", "min_p": "min_p", "min_tokens": "min_new_tokens",
                  "stop_token_ids": "stop_token_ids", "ignore_eos": "ignore_eos",
                  "skip_special_tokens": "skip_special_tokens", "no_stop_trim": "no_stop_trim",
                  "repetition_penalty": "repetition_penalty", "spaces_between_special_tokens":
                  "spaces_between_special_tokens"}


def _sampling_params(body: dict[str, Any], default_max_tokens: int | None) -> SamplingParams:
    raw: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", default_max_tokens))
    if max_tokens is not None:
        raw["max_new_tokens"] = max_tokens
    for openai_key, sglang_key in (("temperature", "temperature"), ("top_p", "top_p"), ("n", "n"),
                                   ("stop", "stop"), ("seed", "sampling_seed"),
                                   ("frequency_penalty", "frequency_penalty"),
                                   ("presence_penalty", "presence_penalty"), *_SGLANG_EXTRAS.items()):
        if body.get(openai_key) is not None:
            raw[sglang_key] = body[openai_key]
    if body.get("logit_bias"):
        raw["logit_bias"] = {int(k): float(v) for k, v in body["logit_bias"].items()}
    return SamplingParams.from_dict(raw)


def _finish(meta: dict[str, Any]) -> tuple[str | None, Any]:
    reason = meta.get("finish_reason") or None
    if reason is None:
        return None, None
    return reason["type"], reason.get("matched")


def _usage(results: list[dict[str, Any]], prompts: int, n: int) -> dict[str, int]:
    prompt_tokens = sum(results[i * n]["meta_info"]["prompt_tokens"] for i in range(prompts))
    completion_tokens = sum(r["meta_info"]["completion_tokens"] for r in results)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _chat_prompt_ids(engine: EmbeddedEngine, body: dict[str, Any]) -> list[int]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages: expected a non-empty list of chat messages")
    if body.get("response_format") and body["response_format"].get("type") not in (None, "text"):
        raise RequestError("response_format: constrained decoding needs SGLang's grammar backend")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise RequestError("tool_choice: tool-call parsing needs SGLang (--rollout-engine sglang)")
    tokenizer = engine.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise RequestError(f"the tokenizer of {engine.model_path} has no chat template; use /v1/completions")
    kwargs = dict(body.get("chat_template_kwargs") or {})
    if body.get("tools"):
        kwargs["tools"] = body["tools"]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)
    return tokenizer.encode(text, add_special_tokens=False)


def _token_text(engine: EmbeddedEngine, token: int) -> str:
    return engine.tokenizer.decode([token])


def _chat_logprobs(engine: EmbeddedEngine, meta: dict[str, Any], top: int) -> dict[str, Any]:
    content = []
    tops = meta.get("output_top_logprobs") or []
    for i, (logprob, token, _) in enumerate(meta.get("output_token_logprobs", [])):
        text = _token_text(engine, token)
        entry = {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []}
        if top and i < len(tops):
            entry["top_logprobs"] = [
                {"token": _token_text(engine, t), "logprob": lp, "bytes": list(_token_text(engine, t).encode())}
                for lp, t, _ in tops[i]
            ]
        content.append(entry)
    return {"content": content}


def _completion_logprobs(engine: EmbeddedEngine, meta: dict[str, Any], echo_prompt: bool) -> dict[str, Any]:
    entries = list(meta.get("input_token_logprobs", [])) if echo_prompt else []
    entries += meta.get("output_token_logprobs", [])
    tops = ([None] * len(meta.get("input_token_logprobs", [])) if echo_prompt else []) + \
        list(meta.get("output_top_logprobs") or [])
    tokens, token_logprobs, top_logprobs, offsets, offset = [], [], [], [], 0
    for i, (logprob, token, _) in enumerate(entries):
        text = _token_text(engine, token)
        tokens.append(text)
        token_logprobs.append(logprob)
        offsets.append(offset)
        offset += len(text)
        top = tops[i] if i < len(tops) else None
        top_logprobs.append(None if top is None else {_token_text(engine, t): lp for lp, t, _ in top})
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}


def add_openai_routes(app, engine: EmbeddedEngine) -> None:
    """Register the ``/v1`` routes on ``app``."""
    from miles_core.engines.disconnect import until_disconnect
    from miles_core.engines.embedded.server import SSE_DONE, error_response, json_body, sse

    def model_card() -> dict[str, Any]:
        return {"id": engine.served_model_name, "object": "model", "created": int(engine.started_at),
                "owned_by": "miles", "root": engine.served_model_name,
                "max_model_len": engine.runner.context_length}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(model: str):
        if model != engine.served_model_name:
            return error_response(404, f"The model '{model}' does not exist", "invalid_request_error")
        return model_card()

    # ---------------------------------------------------------------------------- /v1/completions

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await json_body(request)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            texts, ids = [prompt], [None]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            texts, ids = list(prompt), [None] * len(prompt)
        elif isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
            texts, ids = [None], [list(prompt)]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, list) for p in prompt):
            texts, ids = [None] * len(prompt), [list(p) for p in prompt]
        else:
            raise RequestError("prompt: expected a string, a list of strings, a list of token ids or a list of lists")
        params = _sampling_params(body, default_max_tokens=16)
        logprobs = body.get("logprobs")
        echo = bool(body.get("echo", False))
        request_id = f"cmpl-{uuid.uuid4().hex}"
        prompts = [
            PromptRequest(rid=f"{request_id}-{i}", text=text, input_ids=prompt_ids, params=params,
                          return_logprob=logprobs is not None, logprob_start_len=0 if echo and logprobs is not None else -1,
                          top_logprobs_num=int(logprobs or 0))
            for i, (text, prompt_ids) in enumerate(zip(texts, ids, strict=True))
        ]
        stream = bool(body.get("stream", False))
        call = GenerateCall(prompts=prompts, batched=True, stream=stream)
        created = int(time.time())
        model = body.get("model") or engine.served_model_name

        def prompt_text(index: int) -> str:
            prompt_index = index // params.n
            return texts[prompt_index] if texts[prompt_index] is not None else engine.tokenizer.decode(ids[prompt_index])

        if not stream:
            results = await until_disconnect(request, engine.generate(call))
            choices = []
            for index, result in enumerate(results):
                finish, matched = _finish(result["meta_info"])
                choices.append({
                    "index": index,
                    "text": (prompt_text(index) if echo else "") + result["text"],
                    "logprobs": _completion_logprobs(engine, result["meta_info"], echo) if logprobs is not None else None,
                    "finish_reason": finish, "matched_stop": matched,
                })
            return JSONResponse({"id": request_id, "object": "text_completion", "created": created, "model": model,
                                 "choices": choices, "usage": _usage(results, len(prompts), params.n)})

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = engine.generate_stream(call)
        first = await chunks.__anext__()

        async def events() -> AsyncIterator[bytes]:
            sent: dict[int, int] = {}
            finals: dict[int, dict] = {}
            try:
                async for chunk in _prepend(first, chunks):
                    index = chunk["index"]
                    finish, matched = _finish(chunk["meta_info"])
                    text = chunk["text"]
                    if index not in sent and echo:
                        text_prefix = prompt_text(index)
                    else:
                        text_prefix = ""
                    delta = text[sent.get(index, 0):] if len(text) >= sent.get(index, 0) else ""
                    sent[index] = len(text)
                    if finish is not None:
                        finals[index] = chunk
                    yield sse({"id": request_id, "object": "text_completion", "created": created, "model": model,
                               "choices": [{"index": index, "text": text_prefix + delta, "logprobs": None,
                                            "finish_reason": finish, "matched_stop": matched}]})
                if include_usage:
                    ordered = [finals[i] for i in sorted(finals)]
                    yield sse({"id": request_id, "object": "text_completion", "created": created, "model": model,
                               "choices": [], "usage": _usage(ordered, len(prompts), params.n)})
                yield SSE_DONE
            finally:
                await chunks.aclose()

        return StreamingResponse(events(), media_type="text/event-stream")

    # ---------------------------------------------------------------------------- /v1/chat/completions

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await json_body(request)
        prompt_ids = _chat_prompt_ids(engine, body)
        params = _sampling_params(body, default_max_tokens=None)
        want_logprobs = bool(body.get("logprobs", False))
        top = int(body.get("top_logprobs") or 0) if want_logprobs else 0
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        stream = bool(body.get("stream", False))
        call = GenerateCall(prompts=[PromptRequest(rid=request_id, text=None, input_ids=prompt_ids, params=params,
                                                   return_logprob=want_logprobs, top_logprobs_num=top)],
                            batched=True, stream=stream)
        created = int(time.time())
        model = body.get("model") or engine.served_model_name

        if not stream:
            results = await until_disconnect(request, engine.generate(call))
            choices = []
            for index, result in enumerate(results):
                finish, matched = _finish(result["meta_info"])
                choices.append({
                    "index": index,
                    "message": {"role": "assistant", "content": result["text"], "tool_calls": None},
                    "logprobs": _chat_logprobs(engine, result["meta_info"], top) if want_logprobs else None,
                    "finish_reason": finish, "matched_stop": matched,
                })
            return JSONResponse({"id": request_id, "object": "chat.completion", "created": created, "model": model,
                                 "choices": choices, "usage": _usage(results, 1, params.n)})

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = engine.generate_stream(call)
        first = await chunks.__anext__()

        def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return sse({"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": choices, **extra})

        async def events() -> AsyncIterator[bytes]:
            sent: dict[int, int] = {}
            finals: dict[int, dict] = {}
            try:
                for index in range(params.n):
                    yield frame([{"index": index, "delta": {"role": "assistant", "content": ""},
                                  "logprobs": None, "finish_reason": None}])
                async for chunk in _prepend(first, chunks):
                    index = chunk["index"]
                    finish, matched = _finish(chunk["meta_info"])
                    text = chunk["text"]
                    delta = text[sent.get(index, 0):] if len(text) >= sent.get(index, 0) else ""
                    sent[index] = len(text)
                    if finish is not None:
                        finals[index] = chunk
                    if delta or finish is not None:
                        yield frame([{"index": index, "delta": {"content": delta} if delta else {},
                                      "logprobs": None, "finish_reason": finish, "matched_stop": matched}])
                if include_usage:
                    yield frame([], usage=_usage([finals[i] for i in sorted(finals)], 1, params.n))
                yield SSE_DONE
            finally:
                await chunks.aclose()

        return StreamingResponse(events(), media_type="text/event-stream")


async def _prepend(first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    yield first
    async for item in rest:
        yield item
