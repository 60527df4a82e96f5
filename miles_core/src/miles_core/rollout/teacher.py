"""Teacher log-probs for on-policy distillation (``--opd-teacher-url``).

After a sample is generated, the teacher — any SGLang-compatible server, e.g. a second embedded engine
or SGLang serving the bigger model — scores the student's own tokens by *prefill*: ``POST /generate``
with the whole sequence, ``max_new_tokens: 0`` and ``logprob_start_len`` at the last prompt token, and the
response tokens' log-probs are read from ``meta_info.input_token_logprobs`` (SGLang's layout, as Miles's
OPD reward does). The teacher's distribution is its own (temperature 1). The token ids it echoes are
checked against the sample's, so a teacher with another tokenizer fails loudly instead of teaching noise.
"""

from __future__ import annotations

from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.rollout.http_post import GenerateRequestError, post_json_with_retries

__all__ = ["TeacherMismatchError", "score_with_teacher"]


class TeacherMismatchError(RuntimeError):
    """The teacher's answer does not line up with the sample's tokens."""


def teacher_payload(sample: Sample) -> dict[str, Any]:
    return {
        "input_ids": list(sample.tokens),
        "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
        "return_logprob": True,
        "logprob_start_len": max(sample.prompt_length - 1, 0),
    }


def response_log_probs(sample: Sample, answer: dict[str, Any]) -> list[float]:
    """The log-probs of the sample's response tokens in a prefill answer; alignment checked."""
    entries = (answer.get("meta_info") or {}).get("input_token_logprobs") or []
    tail = entries[-sample.response_length:] if sample.response_length else []
    if len(tail) != sample.response_length or any(entry is None or entry[0] is None for entry in tail):
        raise TeacherMismatchError(
            f"sample {sample.index}: the teacher returned {len(entries)} input log-probs, fewer than the "
            f"{sample.response_length} response tokens")
    expected = sample.tokens[len(sample.tokens) - sample.response_length:]
    echoed = [int(entry[1]) for entry in tail]
    if echoed != expected:
        raise TeacherMismatchError(
            f"sample {sample.index}: the teacher scored other tokens than the student generated "
            f"(first response ids {echoed[:5]} vs {expected[:5]}); student and teacher must share a tokenizer")
    return [float(entry[0]) for entry in tail]


async def score_with_teacher(state: Any, samples: list[Sample]) -> None:
    """Fill ``teacher_log_probs`` of every generated sample of ``samples`` from ``--opd-teacher-url``."""
    args = state.args
    url = str(args.opd_teacher_url).rstrip("/") + "/generate"
    for sample in samples:
        if sample.status not in (SampleStatus.COMPLETED, SampleStatus.TRUNCATED):
            continue
        if sample.response_length == 0:
            sample.teacher_log_probs = []
            continue
        answer = await post_json_with_retries(
            state.client, url, teacher_payload(sample), what=f"teacher POST {url}", error=GenerateRequestError,
            max_retries=int(getattr(args, "rollout_http_max_retries", 5)),
            backoff=float(getattr(args, "rollout_http_retry_backoff", 1.0)), max_wait=10.0,
            retries_flag="--rollout-http-max-retries", aborted=lambda: state.aborted)
        sample.teacher_log_probs = response_log_probs(sample, answer)
