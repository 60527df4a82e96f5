"""The embedded engine in-process on tiny Qwen3: log-probs against an HF forward pass, seeds that do not
depend on the batch, continuous batching, stop rules, scoring, abort and retraction."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch
from miles_core.engines.embedded.engine import EmbeddedEngine
from miles_core.engines.embedded.params import RequestError, parse_generate_call

PROMPTS = ["What is 2+2?", "Hi", "Write a long story about a dragon and a knight:"]


@pytest.fixture(scope="module")
def engine(tiny_qwen3):
    torch.manual_seed(0)
    engine = EmbeddedEngine(tiny_qwen3, device="cpu", random_seed=0, max_batch_size=16)
    engine.start()
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.fixture(scope="module")
def hf_model(tiny_qwen3):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_qwen3).eval()


def generate(engine: EmbeddedEngine, body: dict) -> list[dict]:
    return asyncio.run(engine.generate(parse_generate_call(body)))


def hf_log_probs(model, tokens: list[int], temperature: float = 1.0) -> torch.Tensor:
    """log P(tokens[i] | tokens[:i]) for i >= 1, from one forward pass at ``temperature``."""
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].float()
    log_probs = torch.log_softmax(logits / temperature, dim=-1)
    return log_probs[:-1].gather(1, torch.tensor(tokens[1:]).unsqueeze(1)).squeeze(1)


def test_batched_log_probs_equal_an_hf_forward_pass_at_the_sampling_temperature(engine, hf_model):
    temperature = 0.7
    results = generate(engine, {"text": PROMPTS, "return_logprob": True, "sampling_params": {
        "temperature": temperature, "max_new_tokens": 12, "min_new_tokens": 12, "sampling_seed": 3}})
    assert len(results) == len(PROMPTS)
    for prompt, result in zip(PROMPTS, results, strict=True):
        prompt_ids = engine.tokenizer.encode(prompt)
        out_ids = result["output_ids"]
        reported = torch.tensor([lp for lp, _, _ in result["meta_info"]["output_token_logprobs"]])
        assert [tok for _, tok, _ in result["meta_info"]["output_token_logprobs"]] == out_ids
        expected = hf_log_probs(hf_model, prompt_ids + out_ids, temperature)[len(prompt_ids) - 1:]
        assert torch.allclose(reported, expected, atol=1e-4), (reported - expected).abs().max()


def test_greedy_decoding_matches_hf_generate(engine, hf_model):
    prompt_ids = engine.tokenizer.encode(PROMPTS[0])
    result = generate(engine, {"input_ids": prompt_ids, "sampling_params": {
        "temperature": 0, "max_new_tokens": 10, "min_new_tokens": 10}})[0]
    with torch.no_grad():
        hf = hf_model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=10, min_new_tokens=10)
    assert result["output_ids"] == hf[0, len(prompt_ids):].tolist()


def test_a_seed_gives_the_same_tokens_alone_or_joining_a_running_batch(engine):
    request = {"text": "Hi", "return_logprob": True,
               "sampling_params": {"max_new_tokens": 16, "min_new_tokens": 16, "sampling_seed": 11}}
    alone = generate(engine, request)[0]

    async def crowded():
        others = [asyncio.create_task(engine.generate(parse_generate_call(
            {"text": f"{p} {i}", "sampling_params": {"max_new_tokens": 300, "min_new_tokens": 300}})))
            for i, p in enumerate(PROMPTS * 2)]
        await asyncio.sleep(0.05)
        assert engine.scheduler.load()["num_running_reqs"] == 6  # ours joins a batch that is decoding
        ours = await engine.generate(parse_generate_call(request))
        await asyncio.gather(*others)
        return ours[0]

    batched = asyncio.run(crowded())
    assert batched["output_ids"] == alone["output_ids"]
    lp_alone = [lp for lp, _, _ in alone["meta_info"]["output_token_logprobs"]]
    lp_batched = [lp for lp, _, _ in batched["meta_info"]["output_token_logprobs"]]
    assert lp_batched == pytest.approx(lp_alone, abs=1e-4)
    other_seed = generate(engine, {**request, "sampling_params": {**request["sampling_params"], "sampling_seed": 12}})
    assert other_seed[0]["output_ids"] != alone["output_ids"]


def test_requests_join_and_leave_the_batch_while_a_long_one_decodes(engine):
    finished: list[str] = []

    async def run(name: str, tokens: int):
        await engine.generate(parse_generate_call({"text": name, "rid": name, "sampling_params": {
            "max_new_tokens": tokens, "min_new_tokens": tokens}}))
        finished.append(name)

    async def scenario():
        long = asyncio.create_task(run("long", 300))
        await asyncio.sleep(0.1)
        await asyncio.gather(*(run(f"short{i}", 5) for i in range(4)))
        assert "long" not in finished  # the short ones were served while the long one was running
        await long

    steps_before = engine.scheduler.stats.decode_steps
    asyncio.run(scenario())
    assert finished[-1] == "long" and len(finished) == 5
    assert engine.scheduler.stats.max_running >= 2
    assert engine.scheduler.stats.decode_steps - steps_before < 300 + 4 * 5  # decoded together, not one by one


def test_n_samples_are_seeded_per_sample_and_ordered(engine):
    results = generate(engine, {"text": "Hi", "rid": "many",
                                "sampling_params": {"n": 3, "max_new_tokens": 8, "min_new_tokens": 8,
                                                    "sampling_seed": 5}})
    assert [r["meta_info"]["id"] for r in results] == ["many-0", "many-1", "many-2"]
    assert len({tuple(r["output_ids"]) for r in results}) == 3
    second = generate(engine, {"text": "Hi", "sampling_params": {"max_new_tokens": 8, "min_new_tokens": 8,
                                                                "sampling_seed": 6}})[0]
    assert second["output_ids"] == results[1]["output_ids"]


def test_stop_token_ids_and_stop_strings_on_the_real_model(engine):
    base = {"text": "Hi", "sampling_params": {"temperature": 0, "max_new_tokens": 12, "min_new_tokens": 12}}
    tokens = generate(engine, base)[0]["output_ids"]
    stop_token = tokens[3]
    first = tokens.index(stop_token)
    by_id = generate(engine, {"text": "Hi", "sampling_params": {
        "temperature": 0, "max_new_tokens": 12, "stop_token_ids": [stop_token]}})[0]
    assert by_id["output_ids"] == tokens[:first + 1]
    assert by_id["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop_token}
    stop_text = engine.tokenizer.decode([stop_token])
    by_text = generate(engine, {"text": "Hi", "sampling_params": {
        "temperature": 0, "max_new_tokens": 12, "stop": stop_text}})[0]
    assert by_text["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop_text}
    assert by_text["text"] == engine.tokenizer.decode(tokens[:first])


def test_prefill_scoring_returns_prompt_log_probs_like_sglang(engine, hf_model):
    prompt = engine.tokenizer.encode("Score me")
    response = generate(engine, {"input_ids": prompt, "return_logprob": True,
                                 "sampling_params": {"max_new_tokens": 6, "min_new_tokens": 6, "sampling_seed": 1}})[0]
    full = prompt + response["output_ids"]
    scored = generate(engine, {"input_ids": full, "return_logprob": True, "logprob_start_len": len(prompt) - 1,
                               "sampling_params": {"max_new_tokens": 0, "temperature": 0}})[0]
    entries = scored["meta_info"]["input_token_logprobs"]
    assert scored["output_ids"] == [] and scored["meta_info"]["finish_reason"]["type"] == "length"
    assert [tok for _, tok, _ in entries] == full[len(prompt) - 1:]
    assert entries[0][0] is None  # SGLang: the first position has no prediction
    recomputed = torch.tensor([lp for lp, _, _ in entries[1:]])
    rollout = torch.tensor([lp for lp, _, _ in response["meta_info"]["output_token_logprobs"]])
    assert torch.allclose(recomputed, rollout, atol=1e-4)
    assert torch.allclose(recomputed, hf_log_probs(hf_model, full)[len(prompt) - 1:], atol=1e-4)


def test_top_logprobs_are_sorted_and_hold_the_best_tokens(engine):
    result = generate(engine, {"text": "Hi", "return_logprob": True, "top_logprobs_num": 3,
                               "sampling_params": {"max_new_tokens": 4, "sampling_seed": 2}})[0]
    for (chosen, _, _), top in zip(result["meta_info"]["output_token_logprobs"],
                                   result["meta_info"]["output_top_logprobs"], strict=True):
        values = [lp for lp, _, _ in top]
        assert len(top) == 3 and values == sorted(values, reverse=True) and chosen <= values[0] + 1e-6


def test_abort_ends_a_running_request_with_its_tokens_so_far(engine):
    async def scenario():
        task = asyncio.create_task(engine.generate(parse_generate_call(
            {"text": "Hi", "rid": "to-abort", "sampling_params": {"max_new_tokens": 500, "min_new_tokens": 500}})))
        deadline = time.monotonic() + 10
        while engine.scheduler.stats.tokens_generated == 0 or not engine.scheduler.load()["num_running_reqs"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert engine.abort("to-abort") == 1
        return (await task)[0]

    result = asyncio.run(scenario())
    assert result["meta_info"]["finish_reason"]["type"] == "abort"
    count = result["meta_info"]["completion_tokens"]
    assert 0 < count < 500 and len(result["output_ids"]) == count


def test_retracted_requests_resume_after_continue(engine):
    async def scenario():
        task = asyncio.create_task(engine.generate(parse_generate_call(
            {"text": "Hi", "sampling_params": {"max_new_tokens": 120, "min_new_tokens": 120, "sampling_seed": 4}})))
        await asyncio.sleep(0.05)
        await asyncio.wrap_future(engine.scheduler.pause("retract"))
        assert engine.scheduler.load()["num_running_reqs"] == 0 and engine.scheduler.load()["num_waiting_reqs"] == 1
        await asyncio.wrap_future(engine.scheduler.resume())
        return (await task)[0]

    result = asyncio.run(scenario())
    assert result["meta_info"]["finish_reason"] == {"type": "length", "length": 120} and len(result["output_ids"]) == 120


def test_prompts_the_model_cannot_take_are_refused(engine):
    with pytest.raises(RequestError, match="context length"):
        generate(engine, {"input_ids": [5] * 600, "sampling_params": {"max_new_tokens": 1}})
    with pytest.raises(RequestError, match="outside the vocabulary"):
        generate(engine, {"input_ids": [5, 10**6], "sampling_params": {"max_new_tokens": 1}})


@pytest.mark.parametrize("failing_step", ["prefill", "decode"])
def test_a_crashing_model_answers_every_request_and_the_engine_reports_unavailable(tiny_qwen3, failing_step):
    from miles_core.engines.embedded.engine import EngineUnavailable

    broken = EmbeddedEngine(tiny_qwen3, device="cpu", random_seed=0)
    broken.start()
    try:
        def explode(*args, **kwargs):
            raise RuntimeError("device lost")

        # prefill: the sequences are caught mid-admission; decode: they are in the running batch
        setattr(broken.runner, failing_step, explode)
        results = generate(broken, {"text": ["a", "bc"], "sampling_params": {"max_new_tokens": 5}})
        for result in results:  # every request, even one caught mid-admission, gets an answer
            assert result["meta_info"]["finish_reason"]["type"] == "abort"
            assert "device lost" in result["meta_info"]["finish_reason"]["message"]
        assert not broken.scheduler.alive
        with pytest.raises(EngineUnavailable, match="device lost"):
            generate(broken, {"text": "a", "sampling_params": {"max_new_tokens": 5}})
    finally:
        broken.shutdown()


def test_min_new_tokens_holds_back_an_eos_the_logit_bias_makes_certain(engine):
    eos = engine.tokenizer.eos_token_id
    biased = {"max_new_tokens": 20, "logit_bias": {str(eos): 100.0}, "sampling_seed": 0}
    eager, patient = generate(engine, {"text": ["Hi", "Hi"], "sampling_params": [
        biased, {**biased, "min_new_tokens": 5}]})
    assert eager["output_ids"] == [eos] and eager["meta_info"]["finish_reason"] == {"type": "stop", "matched": eos}
    assert len(patient["output_ids"]) == 6 and eos not in patient["output_ids"][:5]
    assert patient["output_ids"][5] == eos and patient["meta_info"]["finish_reason"]["matched"] == eos


def test_models_whose_cache_cannot_be_joined_fall_back_to_static_batching(tmp_path, tiny_qwen3):
    """Sliding-window layers keep a rolling cache that rows cannot be joined into: the engine then batches
    statically (new rows wait until the batch drains) and stays exact."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_qwen3)
    config.use_sliding_window, config.sliding_window, config.max_window_layers = True, 64, 1
    config.layer_types = ["full_attention", "sliding_attention"]
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_qwen3).save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    static = EmbeddedEngine(tmp_path, device="cpu", random_seed=0)
    static.start()
    try:
        assert not static.scheduler._joinable

        async def burst():
            return await asyncio.gather(*(static.generate(parse_generate_call({
                "text": prompt, "return_logprob": True,
                "sampling_params": {"max_new_tokens": 8 + 4 * i, "min_new_tokens": 8 + 4 * i}}))
                for i, prompt in enumerate(PROMPTS)))

        for prompt, (result,) in zip(PROMPTS, asyncio.run(burst()), strict=True):
            prompt_ids = static.tokenizer.encode(prompt)
            expected = hf_log_probs(model, prompt_ids + result["output_ids"])[len(prompt_ids) - 1:]
            reported = torch.tensor([lp for lp, _, _ in result["meta_info"]["output_token_logprobs"]])
            assert torch.allclose(reported, expected, atol=1e-4)
    finally:
        static.shutdown()
