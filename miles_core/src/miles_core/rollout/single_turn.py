"""``single_turn`` (default ``--generate-function``): one ``/generate`` call per sample, through the router.

Request (SGLang's API): ``input_ids`` are the prompt's tokens (``add_special_tokens=False``; chat
messages rendered with the tokenizer's template first), or the sample's tokens so far when a partial
rollout resumes; ``sampling_params`` with ``max_new_tokens`` reduced by what was already generated and
clamped to ``--rollout-max-context-len``; ``return_logprob``. When no token is left to generate the
sample is TRUNCATED without a request.

Answer: the new tokens and their log-probs (``meta_info.output_token_logprobs``) are appended to the
sample, ``text`` to its response, ``meta_info.weight_version`` to ``weight_versions``, and
``finish_reason`` sets the status (stop → COMPLETED, length → TRUNCATED, abort → ABORTED, kept for a
later resume). A request that still fails after the bounded retries makes the sample FAILED, with the
reason in ``metadata["error"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.data.tokenization import chat_template_kwargs, encode_prompt
from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import GenerateFunctionSpec
from miles_core.rollout.failures import mark_failed
from miles_core.rollout.generate_types import GenerateFnInput
from miles_core.rollout.http_post import GenerateRequestError, RequestAborted, post_json
from miles_core.rollout.sampling_params import max_context_len

__all__ = ["generate", "build_generate_payload", "apply_generate_output"]


def build_generate_payload(fn_input: GenerateFnInput) -> dict[str, Any] | None:
    """The ``/generate`` request for the sample, or ``None`` when its token budget is used up."""
    sample, state, args = fn_input.sample, fn_input.state, fn_input.args
    if not sample.tokens:
        sample.tokens = encode_prompt(state.tokenizer, sample.prompt, tools=(sample.metadata or {}).get("tools"),
                                      extra_kwargs=chat_template_kwargs(args))
    params = dict(fn_input.sampling_params)
    max_new_tokens = params.get("max_new_tokens")
    if max_new_tokens is not None:
        max_new_tokens -= sample.response_length  # resuming a partial rollout: only what is left
    context_len = max_context_len(args, evaluation=fn_input.evaluation)
    if context_len:
        room = context_len - len(sample.tokens)
        max_new_tokens = room if max_new_tokens is None else min(max_new_tokens, room)
    if max_new_tokens is not None:
        if max_new_tokens <= 0:
            return None
        params["max_new_tokens"] = int(max_new_tokens)
    return {"input_ids": list(sample.tokens), "sampling_params": params, "return_logprob": True}


def apply_generate_output(sample: Sample, output: dict[str, Any]) -> None:
    """Append one ``/generate`` answer to the sample (tokens, text, log-probs, version, status)."""
    meta = output.get("meta_info") if isinstance(output, dict) else None
    if not isinstance(meta, dict):
        raise GenerateRequestError(f"/generate answered without meta_info: {str(output)[:300]}")
    pairs = meta.get("output_token_logprobs")
    if pairs is None:
        raise GenerateRequestError("/generate answered without meta_info.output_token_logprobs although "
                                   "return_logprob was requested")
    new_tokens = [int(pair[1]) for pair in pairs]
    new_log_probs = [float(pair[0]) for pair in pairs]
    if sample.rollout_log_probs is None and sample.response_length:
        raise GenerateRequestError(f"sample {sample.index}: resuming a response that has no rollout log-probs")
    sample.tokens = list(sample.tokens) + new_tokens
    sample.response = (sample.response or "") + str(output.get("text", ""))
    sample.rollout_log_probs = list(sample.rollout_log_probs or []) + new_log_probs
    if sample.loss_mask is not None:
        sample.loss_mask = list(sample.loss_mask) + [1] * len(new_tokens)
    sample.response_length += len(new_tokens)
    version = meta.get("weight_version")
    if version is not None:
        sample.weight_versions.append(str(version))
    sample.status = SampleStatus.from_finish_reason(meta.get("finish_reason"))


async def generate(fn_input: GenerateFnInput) -> Sample:
    """Generate (or continue) one sample's response; see the module docstring."""
    sample = fn_input.sample
    payload = build_generate_payload(fn_input)
    if payload is None:
        sample.status = SampleStatus.TRUNCATED
        return sample
    try:
        output = await post_json(fn_input.state, "/generate", payload)
        apply_generate_output(sample, output)
    except RequestAborted:
        sample.status = SampleStatus.ABORTED
    except GenerateRequestError as exc:
        mark_failed(sample, "generate", str(exc))
    return sample


@hookimpl
def miles_generate_functions() -> Iterable[GenerateFunctionSpec]:
    yield GenerateFunctionSpec(name="single_turn", description="One /generate call per sample through the router",
                               fn=generate)


@hookimpl
def miles_add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("single_turn_generate")
    group.add_argument("--rollout-http-max-retries", type=int, default=5,
                       help="Retries of a /generate request after a transport error, HTTP 429 or 5xx; then the sample "
                            "is FAILED with the reason.")
    group.add_argument("--rollout-http-retry-backoff", type=float, default=1.0,
                       help="First wait in seconds between /generate retries; doubles each retry (at most 10 s).")
