"""SGLang's /generate payload: defaults, range checks with the field named, single vs batched parsing."""

from __future__ import annotations

import pytest
from miles_core.engines.embedded.params import RequestError, SamplingParams, parse_generate_call


def test_defaults_are_sglangs():
    p = SamplingParams.from_dict({})
    assert (p.max_new_tokens, p.temperature, p.top_p, p.top_k, p.min_p, p.n) == (128, 1.0, 1.0, -1, 0.0, 1)
    assert p.skip_special_tokens and not p.no_stop_trim and not p.ignore_eos and p.sampling_seed is None


def test_temperature_zero_is_greedy_and_stop_string_becomes_a_tuple():
    p = SamplingParams.from_dict({"temperature": 0, "stop": "\n", "stop_token_ids": [5, 6]})
    assert p.greedy and p.stop == ("\n",) and p.stop_token_ids == (5, 6)


@pytest.mark.parametrize("field,value", [
    ("top_p", 0.0), ("top_p", 1.5), ("top_k", 0), ("top_k", -2), ("temperature", -0.1), ("min_p", 2.0),
    ("max_new_tokens", -1), ("n", 0), ("repetition_penalty", 0.0), ("max_new_tokens", "ten"),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(RequestError, match=field):
        SamplingParams.from_dict({field: value})


def test_min_new_tokens_cannot_exceed_max():
    with pytest.raises(RequestError, match="min_new_tokens"):
        SamplingParams.from_dict({"max_new_tokens": 4, "min_new_tokens": 5})


def test_grammar_and_unknown_fields_are_refused_not_ignored():
    with pytest.raises(RequestError, match="json_schema.*grammar"):
        SamplingParams.from_dict({"json_schema": "{}"})
    with pytest.raises(RequestError, match="unknown field.*bogus"):
        SamplingParams.from_dict({"bogus": 1})
    assert SamplingParams.from_dict({"regex": None}).greedy is False  # an empty grammar field is fine


def test_single_text_prompt():
    call = parse_generate_call({"text": "hi", "sampling_params": {"max_new_tokens": 3}, "rid": "r1",
                                "return_logprob": True, "logprob_start_len": 0})
    assert not call.batched and not call.stream and len(call.prompts) == 1
    prompt = call.prompts[0]
    assert (prompt.rid, prompt.text, prompt.input_ids, prompt.params.max_new_tokens) == ("r1", "hi", None, 3)
    assert prompt.return_logprob and prompt.logprob_start_len == 0


def test_batched_input_ids_with_per_prompt_lists():
    call = parse_generate_call({
        "input_ids": [[1, 2], [3]], "rid": ["a", "b"], "stream": True,
        "sampling_params": [{"temperature": 0}, {"temperature": 0.5}], "return_logprob": [True, False],
    })
    assert call.batched and call.stream
    assert [p.input_ids for p in call.prompts] == [[1, 2], [3]]
    assert [p.rid for p in call.prompts] == ["a", "b"]
    assert [p.params.temperature for p in call.prompts] == [0.0, 0.5]
    assert [p.return_logprob for p in call.prompts] == [True, False]


def test_one_sampling_params_dict_applies_to_every_prompt_and_rids_are_generated():
    call = parse_generate_call({"text": ["a", "b", "c"], "sampling_params": {"max_new_tokens": 2}})
    assert [p.params.max_new_tokens for p in call.prompts] == [2, 2, 2]
    assert len({p.rid for p in call.prompts}) == 3


@pytest.mark.parametrize("body,message", [
    ({}, "exactly one of 'text' or 'input_ids'"),
    ({"text": "a", "input_ids": [1]}, "exactly one"),
    ({"text": ["a", "b"], "rid": "x"}, "rid"),
    ({"text": ["a", "b"], "return_logprob": [True]}, "return_logprob"),
    ({"text": "a", "image_data": "x.png"}, "image_data"),
    ({"text": []}, "empty batch"),
])
def test_malformed_calls_are_explained(body, message):
    with pytest.raises(RequestError, match=message):
        parse_generate_call(body)
