"""The ``single_turn`` generate function against a scripted SGLang-shaped server on loopback."""

from __future__ import annotations

import asyncio

import pytest
from miles_core.data.tokenization import load_tokenizer
from miles_core.rollout.generate_types import GenerateFnInput, GenerateState, call_generate_fn, concurrency_limit
from miles_core.rollout.sampling_params import default_sampling_params, sample_seed
from miles_core.rollout.single_turn import generate

from miles_core import Sample, SampleStatus


@pytest.fixture
def tokenizer(tiny_qwen3):
    return load_tokenizer(str(tiny_qwen3))


def _run(args, tokenizer, router, sample, *, seed=3, evaluation=False, fn=generate):
    async def go():
        state = GenerateState.create(args, tokenizer=tokenizer, router_url=router.url, evaluation=evaluation)
        try:
            params = dict(state.sampling_params, sampling_seed=seed)
            return await call_generate_fn(fn, GenerateFnInput(args, state, sample, params, evaluation))
        finally:
            await state.aclose()

    return asyncio.run(go())


def test_sampling_params_come_from_the_flags_and_eval_inherits(miles_args):
    args = miles_args(rollout_temperature=0.7, rollout_top_p=0.9, rollout_max_response_len=32, rollout_stop=["###"],
                     eval_top_k=5)
    assert default_sampling_params(args) == {
        "temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_new_tokens": 32, "stop": ["###"],
        "skip_special_tokens": False, "no_stop_trim": True, "spaces_between_special_tokens": False,
    }
    evaluation = default_sampling_params(args, evaluation=True)
    assert evaluation["temperature"] == 0.7 and evaluation["top_k"] == 5 and evaluation["max_new_tokens"] == 32
    assert default_sampling_params(miles_args(eval_temperature=0.0), evaluation=True)["temperature"] == 0.0


def test_seeds_are_stable_and_distinct():
    assert sample_seed(42, 7) == sample_seed(42, 7)
    assert len({sample_seed(42, i) for i in range(100)}) == 100
    assert sample_seed(42, 7) != sample_seed(43, 7)
    assert 0 <= sample_seed(42, 7) < 2**31


def test_concurrency_is_per_engine(miles_args):
    assert concurrency_limit(miles_args(sglang_server_concurrency=8, rollout_num_gpus=4,
                                       rollout_num_gpus_per_engine=2)) == 16
    assert concurrency_limit(miles_args(sglang_server_concurrency=8)) == 8


def test_generate_fills_the_sample(miles_args, tokenizer, router):
    args = miles_args(rollout_max_response_len=16)
    sample = Sample(index=0, prompt="hi")
    [out] = _run(args, tokenizer, router, sample, seed=3)  # 1 + 3 % 5 = 4 tokens, "3456"
    assert out is sample
    request = router.requests[0]
    assert request["input_ids"] == tokenizer.encode("hi", add_special_tokens=False)
    assert request["return_logprob"] is True
    assert request["sampling_params"]["max_new_tokens"] == 16 and request["sampling_params"]["sampling_seed"] == 3
    assert sample.response == "3456" and sample.response_length == 4
    assert sample.tokens == request["input_ids"] + tokenizer.encode("3456", add_special_tokens=False)
    assert sample.rollout_log_probs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert sample.status == SampleStatus.COMPLETED and sample.weight_versions == ["0"]
    sample.validate()


def test_chat_messages_use_the_template(miles_args, tokenizer, router):
    sample = Sample(index=0, prompt=[{"role": "user", "content": "yo"}])
    _run(miles_args(), tokenizer, router, sample)
    expected = tokenizer.apply_chat_template(sample.prompt, tokenize=False, add_generation_prompt=True)
    assert router.requests[0]["input_ids"] == tokenizer.encode(expected, add_special_tokens=False)


def test_length_finish_is_truncated_and_context_clamps(miles_args, tokenizer, router):
    args = miles_args(rollout_max_response_len=16, rollout_max_context_len=4)
    sample = Sample(index=0, prompt="abc")  # 3 prompt tokens: room for 1
    _run(args, tokenizer, router, sample, seed=4)
    assert router.requests[0]["sampling_params"]["max_new_tokens"] == 1
    assert sample.status == SampleStatus.TRUNCATED and sample.response_length == 1


def test_no_room_left_is_truncated_without_a_request(miles_args, tokenizer, router):
    sample = Sample(index=0, prompt="abcd")
    _run(miles_args(rollout_max_context_len=4), tokenizer, router, sample)
    assert sample.status == SampleStatus.TRUNCATED and router.requests == []


def test_a_partial_sample_resumes_where_it_stopped(miles_args, tokenizer, router):
    prompt_ids = tokenizer.encode("hi", add_special_tokens=False)
    sample = Sample(index=0, prompt="hi", tokens=prompt_ids + [5, 6], response="23", response_length=2,
                    rollout_log_probs=[-1.0, -1.0], status=SampleStatus.ABORTED, weight_versions=["0"])
    _run(miles_args(rollout_max_response_len=10), tokenizer, router, sample, seed=1)  # 2 more tokens
    request = router.requests[0]
    assert request["input_ids"] == prompt_ids + [5, 6]
    assert request["sampling_params"]["max_new_tokens"] == 8
    assert sample.response == "2312" and sample.response_length == 4
    assert sample.rollout_log_probs == pytest.approx([-1.0, -1.0, -0.1, -0.2])
    assert sample.weight_versions == ["0", "0"] and sample.status == SampleStatus.COMPLETED


def test_server_errors_are_retried_then_fail_the_sample(miles_args, tokenizer, router):
    args = miles_args(rollout_http_max_retries=2, rollout_http_retry_backoff=0.01)
    router.fail_statuses = [503, 500]
    ok = Sample(index=0, prompt="hi")
    _run(args, tokenizer, router, ok)
    assert ok.status == SampleStatus.COMPLETED and len(router.requests) == 3

    router.reset()
    router.fail_statuses = [500, 500, 500]
    failed = Sample(index=1, prompt="hi")
    _run(args, tokenizer, router, failed)
    assert failed.status == SampleStatus.FAILED and failed.metadata["error_kind"] == "generate"
    assert "failed after 3 attempts (--rollout-http-max-retries): HTTP 500" in failed.metadata["error"]

    router.reset()
    router.fail_statuses = [400]
    refused = Sample(index=2, prompt="hi")
    _run(args, tokenizer, router, refused)
    assert len(router.requests) == 1 and "answered HTTP 400" in refused.metadata["error"]


def test_legacy_generate_functions_are_adapted(miles_args, tokenizer, router):
    seen = {}

    async def legacy(args, sample, sampling_params, evaluation=False):
        seen.update(evaluation=evaluation, seed=sampling_params["sampling_seed"])
        sample.response, sample.status = "done", SampleStatus.COMPLETED
        return sample

    sample = Sample(index=0, prompt="hi")
    assert _run(miles_args(), tokenizer, router, sample, seed=9, evaluation=True, fn=legacy) == [sample]
    assert seen == {"evaluation": True, "seed": 9}

    async def wrong(input):
        return "text"

    with pytest.raises(TypeError, match="must return the Sample"):
        _run(miles_args(), tokenizer, router, Sample(index=0, prompt="hi"), fn=wrong)
