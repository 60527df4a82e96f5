"""Reading teacher log-probs out of a prefill answer (SGLang's ``input_token_logprobs`` layout)."""

from __future__ import annotations

import pytest
from miles_core.rollout.teacher import TeacherMismatchError, response_log_probs, teacher_payload

from miles_core import Sample, SampleStatus


def _sample() -> Sample:
    return Sample(index=3, tokens=[5, 6, 7, 8, 9], response_length=2, status=SampleStatus.COMPLETED)


def test_payload_asks_for_prefill_scoring_from_the_last_prompt_token():
    assert teacher_payload(_sample()) == {
        "input_ids": [5, 6, 7, 8, 9], "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
        "return_logprob": True, "logprob_start_len": 2,
    }


def test_response_log_probs_are_the_tail():
    answer = {"meta_info": {"input_token_logprobs": [[None, 7, None], [-0.5, 8, None], [-1.25, 9, None]]}}
    assert response_log_probs(_sample(), answer) == [-0.5, -1.25]


def test_other_tokens_are_an_error():
    answer = {"meta_info": {"input_token_logprobs": [[None, 7, None], [-0.5, 8, None], [-1.25, 4, None]]}}
    with pytest.raises(TeacherMismatchError, match=r"sample 3: the teacher scored other tokens .* \[8, 4\] vs \[8, 9\]"):
        response_log_probs(_sample(), answer)


def test_too_few_log_probs_is_an_error():
    answer = {"meta_info": {"input_token_logprobs": [[-0.5, 9, None]]}}
    with pytest.raises(TeacherMismatchError, match="fewer than the 2 response tokens"):
        response_log_probs(_sample(), answer)
