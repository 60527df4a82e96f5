"""The embedded engine as a process, through :class:`EngineClient`: SGLang's request/response shapes,
streaming, abort, pause, memory release, and the three weight-update paths (disk, tensor, gloo broadcast)."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
from pathlib import Path

import httpx
import pytest
import torch
from miles_core.engines.client import EngineClient, EngineHTTPError
from miles_core.engines.local import start_engine
from miles_core.engines.process import free_port

GREEDY = {"temperature": 0, "max_new_tokens": 8, "min_new_tokens": 8}


@pytest.fixture(scope="module")
def engine(tiny_qwen3):
    handle = start_engine(tiny_qwen3, random_seed=0, max_batch_size=32)
    try:
        yield handle
    finally:
        handle.stop()


def call(engine, method: str, *args, **kwargs):
    """Run one EngineClient coroutine method against the engine."""
    async def run():
        async with EngineClient(engine.url, timeout=60) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(run())


def greedy_ids(engine) -> list[int]:
    return call(engine, "generate", text="Hi", sampling_params=GREEDY)["output_ids"]


@pytest.fixture(scope="module")
def original_weights(tiny_qwen3) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(tiny_qwen3) / "model.safetensors"))


def perturbed(weights: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: v + 0.5 * torch.randn(v.shape, generator=generator) for k, v in weights.items()}


@pytest.fixture
def restore_weights(engine, tiny_qwen3):
    """Every test that changes weights leaves the engine with the checkpoint's weights again."""
    before = greedy_ids(engine)
    yield before
    result = call(engine, "update_weights_from_disk", str(tiny_qwen3), weight_version="0")
    assert result["success"], result
    assert greedy_ids(engine) == before


# ------------------------------------------------------------------------------------------- shapes

META_KEYS = {"id", "finish_reason", "prompt_tokens", "completion_tokens", "cached_tokens", "weight_version",
             "e2e_latency"}


def test_generate_response_has_sglangs_shape(engine):
    out = call(engine, "generate", input_ids=[5, 6, 7], sampling_params={"max_new_tokens": 4}, return_logprob=True,
               rid="shape-1")
    assert set(out) == {"text", "output_ids", "meta_info"}
    meta = out["meta_info"]
    assert META_KEYS <= set(meta) and meta["id"] == "shape-1" and meta["weight_version"] == "0"
    assert meta["finish_reason"]["type"] in ("stop", "length") and meta["prompt_tokens"] == 3
    assert meta["completion_tokens"] == len(out["output_ids"]) == len(meta["output_token_logprobs"])
    for logprob, token, text in meta["output_token_logprobs"]:
        assert isinstance(logprob, float) and logprob <= 0 and isinstance(token, int) and text is None
    assert meta["input_token_logprobs"] == []


def test_batches_and_parallel_samples_answer_lists_in_order(engine):
    batch = call(engine, "generate", text=["a", "bb", "ccc"], sampling_params={"max_new_tokens": 2},
                 rid=["x", "y", "z"])
    assert [r["meta_info"]["id"] for r in batch] == ["x", "y", "z"]
    assert [r["meta_info"]["prompt_tokens"] for r in batch] == [1, 2, 3]
    samples = call(engine, "generate", text="a", sampling_params={"max_new_tokens": 2, "n": 2})
    assert isinstance(samples, list) and len(samples) == 2


def test_stream_chunks_are_cumulative_and_end_with_the_finish_reason(engine):
    async def run():
        async with EngineClient(engine.url) as client:
            return [c async for c in client.generate_stream(text="Hi", sampling_params=GREEDY, return_logprob=True)]

    chunks = asyncio.run(run())
    assert len(chunks) == GREEDY["max_new_tokens"]
    for earlier, later in zip(chunks, chunks[1:], strict=False):
        assert later["text"].startswith(earlier["text"])
        assert later["output_ids"][:len(earlier["output_ids"])] == earlier["output_ids"]
    assert all(c["meta_info"]["finish_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["meta_info"]["finish_reason"] == {"type": "length", "length": 8}
    assert chunks[-1]["output_ids"] == greedy_ids(engine)
    assert len(chunks[-1]["meta_info"]["output_token_logprobs"]) == 8


def test_info_and_health_endpoints(engine, tiny_qwen3):
    assert call(engine, "health") and call(engine, "health_generate")
    info = call(engine, "get_model_info")
    assert info["model_path"] == str(tiny_qwen3) and info["is_generation"] and info["weight_version"] == "0"
    assert call(engine, "get_weight_version") == "0"
    server = call(engine, "get_server_info")
    assert server["engine"] == "miles-embedded" and server["random_seed"] == 0 and server["internal_states"]
    for method in ("GET", "POST"):
        assert httpx.request(method, engine.url + "/flush_cache").status_code == 200


def test_bad_requests_are_400_with_the_reason_and_the_client_names_the_url(engine):
    with pytest.raises(EngineHTTPError) as error:
        call(engine, "generate", text="Hi", sampling_params={"top_p": 0})
    assert error.value.status == 400 and "top_p" in error.value.json()["error"]["message"]
    assert engine.url + "/generate" in str(error.value)


# ------------------------------------------------------------------------------------------- control


def test_abort_all_ends_a_running_request_with_partial_output(engine):
    async def run():
        async with EngineClient(engine.url, timeout=60) as client:
            task = asyncio.create_task(client.generate(text="Hi", sampling_params={
                "max_new_tokens": 400, "min_new_tokens": 400}))
            while (await client._json("GET", "/get_load"))[0]["num_running_reqs"] == 0:
                await asyncio.sleep(0.01)
            await client.abort_request(abort_all=True)
            return await task

    out = asyncio.run(run())
    assert out["meta_info"]["finish_reason"]["type"] == "abort"
    assert 0 < len(out["output_ids"]) < 400


def test_a_client_that_leaves_a_stream_stops_its_generation(engine):
    async def run():
        async with EngineClient(engine.url) as client:
            stream = client.generate_stream(text="Hi", sampling_params={"max_new_tokens": 400, "min_new_tokens": 400})
            async for _ in stream:
                break
            await stream.aclose()
            for _ in range(100):
                if (await client._json("GET", "/get_load"))[0]["num_running_reqs"] == 0:
                    return True
                await asyncio.sleep(0.05)
            return False

    assert asyncio.run(run())


def test_a_client_that_gives_up_on_a_plain_request_is_forgotten(engine):
    async def run() -> list[int]:
        async with EngineClient(engine.url) as client:
            await client.pause_generation("in_place")  # the request will wait in the queue
            try:
                with pytest.raises(httpx.ReadTimeout):
                    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.5)) as impatient:
                        await impatient.post(engine.url + "/generate", json={"text": "Hi"})
                waiting = []
                for _ in range(40):
                    waiting.append((await client._json("GET", "/get_load"))[0]["num_waiting_reqs"])
                    if waiting[-1] == 0:
                        break
                    await asyncio.sleep(0.05)
                return waiting
            finally:
                await client.continue_generation()

    waiting = asyncio.run(run())
    assert waiting[-1] == 0  # aborted while still queued: the client had left


def test_pause_holds_requests_until_continue(engine):
    async def run():
        async with EngineClient(engine.url, timeout=60) as client:
            assert (await client.pause_generation("in_place"))["status"] == "ok"
            task = asyncio.create_task(client.generate(text="Hi", sampling_params=GREEDY))
            await asyncio.sleep(0.3)
            assert not task.done()
            await client.continue_generation()
            return await task

    assert asyncio.run(run())["output_ids"] == greedy_ids(engine)


def test_generating_with_released_weights_is_a_clear_503(engine):
    assert call(engine, "release_memory_occupation", ["weights", "kv_cache"])["success"]
    with pytest.raises(EngineHTTPError) as error:
        call(engine, "generate", text="Hi", sampling_params=GREEDY)
    assert error.value.status == 503 and "resume_memory_occupation" in error.value.body
    assert not call(engine, "health_generate")
    call(engine, "resume_memory_occupation")
    assert call(engine, "generate", text="Hi", sampling_params=GREEDY)["output_ids"] == greedy_ids(engine)


# ------------------------------------------------------------------------------------------- weights


def test_update_weights_from_disk_changes_outputs_and_version(engine, tmp_path, original_weights, restore_weights):
    from safetensors.torch import save_file

    save_file(perturbed(original_weights, seed=1), str(tmp_path / "model.safetensors"))
    result = call(engine, "update_weights_from_disk", str(tmp_path), weight_version="7")
    assert result["success"] and "Weight version updated to 7" in result["message"]
    assert call(engine, "get_weight_version") == "7"
    after = call(engine, "generate", text="Hi", sampling_params=GREEDY)
    assert after["output_ids"] != restore_weights and after["meta_info"]["weight_version"] == "7"


def test_update_weights_from_tensor_buckets(engine, original_weights, restore_weights):
    from safetensors.torch import save

    new = perturbed(original_weights, seed=2)
    names = sorted(new)
    buckets = [base64.b64encode(save({n: new[n] for n in names[i::2]})).decode() for i in range(2)]
    result = call(engine, "update_weights_from_tensor", buckets, load_format="safetensors", weight_version="8")
    assert result["success"], result
    assert call(engine, "generate", text="Hi", sampling_params=GREEDY)["output_ids"] != restore_weights
    assert call(engine, "get_weight_version") == "8"


def test_a_bad_tensor_update_changes_nothing(engine, original_weights):
    from safetensors.torch import save

    before = greedy_ids(engine)
    bad = {"model.norm.weight": torch.zeros(3), "not.a.weight": torch.zeros(2)}
    with pytest.raises(EngineHTTPError) as error:
        call(engine, "update_weights_from_tensor", [base64.b64encode(save(bad)).decode()], weight_version="bad")
    body = error.value.json()
    assert error.value.status == 400 and body["success"] is False
    assert "not.a.weight" in body["message"] and "shape mismatch" in body["message"]
    assert greedy_ids(engine) == before and call(engine, "get_weight_version") != "bad"


def test_update_weights_from_distributed_over_gloo(engine, original_weights, restore_weights):
    import torch.distributed as dist
    from miles_core.engines.weight_group import destroy_weights_update_group, init_weights_update_group

    port = free_port()
    new = perturbed(original_weights, seed=3)
    names = sorted(new)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        joined = pool.submit(call, engine, "init_weights_update_group", master_address="127.0.0.1",
                             master_port=port, rank_offset=1, world_size=2, group_name="miles-test", backend="gloo")
        group = init_weights_update_group("127.0.0.1", port, rank=0, world_size=2, group_name="miles-test",
                                          backend="gloo", timeout=60)
        assert joined.result(timeout=60)["success"]
        try:
            updated = pool.submit(call, engine, "update_weights_from_distributed", names=names,
                                  dtypes=[str(new[n].dtype).removeprefix("torch.") for n in names],
                                  shapes=[list(new[n].shape) for n in names], group_name="miles-test",
                                  weight_version="9")
            for name in names:  # the trainer side: rank 0 broadcasts every tensor in order
                dist.broadcast(new[name].contiguous(), src=0, group=group)
            assert updated.result(timeout=60)["success"]
            assert call(engine, "destroy_weights_update_group", "miles-test")["success"]
        finally:
            destroy_weights_update_group(group)
    assert call(engine, "get_weight_version") == "9"
    assert call(engine, "generate", text="Hi", sampling_params=GREEDY)["output_ids"] != restore_weights


# ------------------------------------------------------------------------------------------- OpenAI API


def test_openai_client_completions_and_chat(engine):
    from openai import OpenAI

    client = OpenAI(base_url=engine.url + "/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    completion = client.completions.create(model=model, prompt="Hi", max_tokens=5, temperature=0, logprobs=2,
                                           extra_body={"min_tokens": 5})
    assert completion.choices[0].finish_reason == "length" and len(completion.choices[0].logprobs.tokens) == 5
    assert completion.usage.completion_tokens == 5
    chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
                                          temperature=0, logprobs=True, top_logprobs=2, n=2, seed=1,
                                          extra_body={"min_tokens": 6})
    assert len(chat.choices) == 2 and chat.usage.completion_tokens == 12
    assert chat.choices[0].message.role == "assistant" and len(chat.choices[0].logprobs.content) == 6
    assert chat.choices[0].message.content == chat.choices[1].message.content  # greedy: both samples agree
    streamed = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
                                              temperature=0, stream=True, extra_body={"min_tokens": 6},
                                              stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in streamed:
        usage = chunk.usage or usage
        pieces += [c.delta.content or "" for c in chunk.choices]
    assert "".join(pieces) == chat.choices[0].message.content and usage.completion_tokens == 6
