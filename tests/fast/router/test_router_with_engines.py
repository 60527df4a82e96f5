"""Acceptance: the real router in front of two embedded engines (tiny Qwen3) on loopback.

Batched generation with log-probs equal to an HF forward pass, the ``openai`` client, streaming and abort
through the router; killing an engine under load loses no request; a restarted engine is re-admitted.
The tests run in file order: the last two change the cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter

import httpx
import pytest
import torch
from miles_core.engines.client import EngineClient
from miles_core.engines.local import start_engine
from miles_core.router.client import RouterClient
from miles_core.router.local import start_router


@pytest.fixture(scope="module")
def cluster(tiny_qwen3):
    state: dict = {"engines": [], "router": None}
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(start_engine, tiny_qwen3, random_seed=seed) for seed in (0, 1)]
            state["engines"] = [f.result() for f in starts]
        state["router"] = start_router(worker_urls=[e.url for e in state["engines"]], health_check_interval=0.2,
                                       health_check_timeout=2.0, failure_threshold=2)
        yield state
    finally:
        for handle in [state["router"], *state["engines"]]:
            if handle is not None:
                handle.stop()


def router_call(cluster, method: str, *args, **kwargs):
    async def run():
        async with RouterClient(cluster["router"].url, timeout=120) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(run())


def worker_states(cluster) -> dict[str, dict]:
    return {w["url"]: w for w in router_call(cluster, "workers")}


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_batched_generate_with_log_probs_matching_an_hf_forward_pass(cluster, tiny_qwen3):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = ["Hello there", "2+2=", "Tell me a story about"]
    temperature = 0.8
    results = router_call(cluster, "generate", text=prompts, return_logprob=True, sampling_params={
        "temperature": temperature, "max_new_tokens": 10, "min_new_tokens": 10, "sampling_seed": 9})
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3)
    for prompt, result in zip(prompts, results, strict=True):
        prompt_ids = tokenizer.encode(prompt)
        tokens = prompt_ids + result["output_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0]
        expected = torch.log_softmax(logits / temperature, -1)[:-1].gather(
            1, torch.tensor(tokens[1:]).unsqueeze(1)).squeeze(1)[len(prompt_ids) - 1:]
        reported = torch.tensor([lp for lp, _, _ in result["meta_info"]["output_token_logprobs"]])
        assert torch.allclose(reported, expected, atol=1e-4)
        assert result["meta_info"]["weight_version"] == "0"


def test_openai_chat_completion_through_the_router(cluster):
    from openai import OpenAI

    client = OpenAI(base_url=cluster["router"].url + "/v1", api_key="unused", max_retries=0)
    chat = client.chat.completions.create(model=client.models.list().data[0].id, max_tokens=8, temperature=0,
                                          messages=[{"role": "user", "content": "Say hi"}], logprobs=True,
                                          extra_body={"min_tokens": 8})
    assert chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens == 8
    assert len(chat.choices[0].logprobs.content) == 8


def test_streaming_through_the_router(cluster):
    async def run():
        async with RouterClient(cluster["router"].url) as client:
            return [c async for c in client.generate_stream(text="Hi", sampling_params={
                "temperature": 0, "max_new_tokens": 6, "min_new_tokens": 6})]

    chunks = asyncio.run(run())
    assert [len(c["output_ids"]) for c in chunks] == [1, 2, 3, 4, 5, 6]
    assert chunks[-1]["meta_info"]["finish_reason"] == {"type": "length", "length": 6}


def test_abort_sent_to_every_worker_ends_a_routed_request(cluster):
    async def run():
        async with RouterClient(cluster["router"].url, timeout=60) as router:
            task = asyncio.create_task(router.generate(text="Hi", sampling_params={
                "max_new_tokens": 2000, "min_new_tokens": 2000}))
            while not any(w["in_flight"] for w in await router.workers()):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            for url in await router.list_workers():  # as Miles does: abort on each engine, not through the router
                async with EngineClient(url) as engine:
                    await engine.abort_request(abort_all=True)
            return await task

    out = asyncio.run(run())
    assert out["meta_info"]["finish_reason"]["type"] == "abort" and len(out["output_ids"]) < 2000


def test_a_client_leaving_the_router_cancels_the_work_on_the_engine(cluster):
    async def run() -> int:
        engines = [EngineClient(e.url) for e in cluster["engines"]]
        try:
            for engine in engines:
                await engine.pause_generation("in_place")
            with pytest.raises(httpx.ReadTimeout):
                async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.5)) as impatient:
                    await impatient.post(cluster["router"].url + "/generate", json={"text": "Hi"})
            for _ in range(60):
                loads = [(await e._json("GET", "/get_load"))[0]["num_waiting_reqs"] for e in engines]
                if sum(loads) == 0:
                    break
                await asyncio.sleep(0.05)
            return sum(loads)
        finally:
            for engine in engines:
                await engine.continue_generation()
                await engine.aclose()

    assert asyncio.run(run()) == 0
    assert all(w["in_flight"] == 0 for w in worker_states(cluster).values())


def test_concurrent_requests_use_both_engines(cluster):
    async def run():
        async with httpx.AsyncClient(base_url=cluster["router"].url, timeout=60) as client:
            responses = await asyncio.gather(*(client.post("/generate", json={
                "text": f"q{i}", "sampling_params": {"max_new_tokens": 30, "min_new_tokens": 30}}) for i in range(8)))
        return Counter(r.headers["x-miles-worker"] for r in responses)

    assert set(asyncio.run(run())) == {e.url for e in cluster["engines"]}


def test_killing_an_engine_under_load_loses_no_request(cluster):
    victim, survivor = cluster["engines"]

    async def run():
        async with httpx.AsyncClient(base_url=cluster["router"].url, timeout=120) as client:
            tasks = [asyncio.create_task(client.post("/generate", json={
                "text": f"request {i}", "sampling_params": {"max_new_tokens": 150, "min_new_tokens": 150}}))
                for i in range(24)]
            async with RouterClient(cluster["router"].url) as router:
                while (await router.workers())[0]["in_flight"] == 0:
                    await asyncio.sleep(0.01)
            await asyncio.to_thread(victim.kill)  # SIGKILL with requests in flight on it
            return await asyncio.gather(*tasks)

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 24
    assert all(r.json()["meta_info"]["completion_tokens"] == 150 for r in responses)
    assert {r.headers["x-miles-worker"] for r in responses} == {survivor.url}
    states = worker_states(cluster)
    assert not states[victim.url]["healthy"] and states[victim.url]["evictions"] == 1
    assert states[survivor.url]["healthy"]


def test_a_restarted_engine_is_readmitted(cluster, tiny_qwen3):
    victim = cluster["engines"][0]
    assert not victim.alive()
    cluster["engines"][0] = start_engine(tiny_qwen3, port=victim.port, random_seed=0)
    wait_until(lambda: worker_states(cluster)[victim.url]["healthy"])

    async def run():
        async with httpx.AsyncClient(base_url=cluster["router"].url, timeout=60) as client:
            responses = await asyncio.gather(*(client.post("/generate", json={
                "text": f"q{i}", "sampling_params": {"max_new_tokens": 20, "min_new_tokens": 20}}) for i in range(6)))
        return {r.headers["x-miles-worker"] for r in responses}

    assert victim.url in asyncio.run(run())
