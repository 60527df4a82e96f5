"""SGLang's ``/generate`` payload, parsed and checked: sampling parameters and the per-prompt requests.

The field names, defaults and meanings are SGLang's (``GenerateReqInput`` and ``SamplingParams``), so a
payload written for SGLang means the same here. Anything this engine cannot honour (grammar-constrained
decoding, images) is refused with a :class:`RequestError` that names the field, never silently ignored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


class RequestError(ValueError):
    """A request the engine refuses; the message says which field and why (HTTP 400)."""


#: SGLang sampling parameters this engine implements.
_SUPPORTED_KEYS = {
    "max_new_tokens", "min_new_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "stop_token_ids",
    "ignore_eos", "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim", "n", "sampling_seed",
    "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias", "stream_interval",
    "custom_params",
}
#: SGLang sampling parameters that need a grammar backend: refused unless empty.
_GRAMMAR_KEYS = ("json_schema", "regex", "ebnf", "structural_tag")

#: SGLang treats temperatures below this as greedy decoding (and reports log-probs at temperature 1).
GREEDY_TEMPERATURE = 1e-6


@dataclass(frozen=True)
class SamplingParams:
    """One prompt's sampling parameters, with SGLang's defaults."""

    max_new_tokens: int = 128
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    no_stop_trim: bool = False
    n: int = 1
    sampling_seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: tuple[tuple[int, float], ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE

    @property
    def has_penalties(self) -> bool:
        return bool(self.frequency_penalty or self.presence_penalty or self.repetition_penalty != 1.0 or self.logit_bias)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SamplingParams:
        """Parse and check SGLang's ``sampling_params`` object."""
        raw = dict(raw or {})
        for key in _GRAMMAR_KEYS:
            if raw.get(key):
                raise RequestError(
                    f"sampling_params.{key}: constrained decoding needs SGLang's grammar backend; the embedded "
                    "engine does not implement it (run with --rollout-engine sglang on GPUs)"
                )
            raw.pop(key, None)
        unknown = sorted(set(raw) - _SUPPORTED_KEYS)
        if unknown:
            raise RequestError(f"sampling_params: unknown field(s) {', '.join(unknown)}")
        stop = raw.get("stop")
        stop_strings: tuple[str, ...] = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if any(not isinstance(s, str) or not s for s in stop_strings):
            raise RequestError("sampling_params.stop: expected a non-empty string or a list of them")
        logit_bias = raw.get("logit_bias") or {}
        params = cls(
            max_new_tokens=_as_int(raw, "max_new_tokens", 128),
            min_new_tokens=_as_int(raw, "min_new_tokens", 0),
            temperature=_as_float(raw, "temperature", 1.0),
            top_p=_as_float(raw, "top_p", 1.0),
            top_k=_as_int(raw, "top_k", -1),
            min_p=_as_float(raw, "min_p", 0.0),
            stop=stop_strings,
            stop_token_ids=tuple(int(t) for t in (raw.get("stop_token_ids") or ())),
            ignore_eos=bool(raw.get("ignore_eos", False)),
            skip_special_tokens=bool(raw.get("skip_special_tokens", True)),
            spaces_between_special_tokens=bool(raw.get("spaces_between_special_tokens", True)),
            no_stop_trim=bool(raw.get("no_stop_trim", False)),
            n=_as_int(raw, "n", 1),
            sampling_seed=None if raw.get("sampling_seed") is None else _as_int(raw, "sampling_seed", 0),
            frequency_penalty=_as_float(raw, "frequency_penalty", 0.0),
            presence_penalty=_as_float(raw, "presence_penalty", 0.0),
            repetition_penalty=_as_float(raw, "repetition_penalty", 1.0),
            logit_bias=tuple(sorted((int(k), float(v)) for k, v in logit_bias.items())),
        )
        params.check()
        return params

    def check(self) -> None:
        """SGLang's range checks, with the field named in the error."""
        if self.max_new_tokens < 0:
            raise RequestError(f"sampling_params.max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= max(self.max_new_tokens, 0):
            raise RequestError(
                f"sampling_params.min_new_tokens must be in [0, max_new_tokens={self.max_new_tokens}], "
                f"got {self.min_new_tokens}"
            )
        if self.temperature < 0:
            raise RequestError(f"sampling_params.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise RequestError(f"sampling_params.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < -1 or self.top_k == 0:
            raise RequestError(f"sampling_params.top_k must be -1 (off) or >= 1, got {self.top_k}")
        if not 0 <= self.min_p <= 1:
            raise RequestError(f"sampling_params.min_p must be in [0, 1], got {self.min_p}")
        if self.n < 1:
            raise RequestError(f"sampling_params.n must be >= 1, got {self.n}")
        if not -2 <= self.frequency_penalty <= 2 or not -2 <= self.presence_penalty <= 2:
            raise RequestError("sampling_params.frequency_penalty and presence_penalty must be in [-2, 2]")
        if not 0 < self.repetition_penalty <= 2:
            raise RequestError(f"sampling_params.repetition_penalty must be in (0, 2], got {self.repetition_penalty}")


def _as_int(raw: dict[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise RequestError(f"sampling_params.{key}: expected an integer, got {value!r}")
    return int(value)


def _as_float(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"sampling_params.{key}: expected a number, got {value!r}")
    return float(value)


@dataclass
class PromptRequest:
    """One prompt of a ``/generate`` call (a batched call holds several), before tokenization."""

    rid: str
    text: str | None
    input_ids: list[int] | None
    params: SamplingParams
    return_logprob: bool = False
    logprob_start_len: int = -1
    top_logprobs_num: int = 0
    return_text_in_logprobs: bool = False


@dataclass
class GenerateCall:
    """A parsed ``/generate`` body: its prompts, whether it was batched, whether it streams."""

    prompts: list[PromptRequest]
    batched: bool
    stream: bool
    extra: dict[str, Any] = field(default_factory=dict)


_UNSUPPORTED_INPUTS = ("input_embeds", "image_data", "video_data", "audio_data", "lora_path")


def parse_generate_call(body: dict[str, Any]) -> GenerateCall:
    """Split SGLang's ``GenerateReqInput`` (single or batched) into one :class:`PromptRequest` per prompt."""
    if not isinstance(body, dict):
        raise RequestError("the /generate body must be a JSON object")
    for key in _UNSUPPORTED_INPUTS:
        if body.get(key):
            raise RequestError(f"{key}: not supported by the embedded engine (text-only transformers backend)")
    text, input_ids = body.get("text"), body.get("input_ids")
    if (text is None) == (input_ids is None):
        raise RequestError("give exactly one of 'text' or 'input_ids'")
    if text is not None:
        batched = isinstance(text, list)
        texts: list[str | None] = list(text) if batched else [text]
        if not all(isinstance(t, str) for t in texts):
            raise RequestError("text: expected a string or a list of strings")
        ids_list: list[list[int] | None] = [None] * len(texts)
    else:
        batched = isinstance(input_ids, list) and bool(input_ids) and isinstance(input_ids[0], list)
        ids_list = [list(map(int, ids)) for ids in input_ids] if batched else [list(map(int, input_ids))]
        texts = [None] * len(ids_list)
    size = len(texts)
    if size == 0:
        raise RequestError("empty batch: 'text' or 'input_ids' holds no prompt")

    def per_prompt(key: str, default: Any) -> list[Any]:
        value = body.get(key, default)
        if batched and isinstance(value, list) and key != "stop":
            if len(value) != size:
                raise RequestError(f"{key}: a list of {len(value)} values for a batch of {size} prompts")
            return value
        return [value] * size

    sampling = body.get("sampling_params") or {}
    sampling_list = per_prompt("sampling_params", sampling) if isinstance(sampling, list) else [sampling] * size
    rids = body.get("rid")
    if rids is None:
        rid_list = [uuid.uuid4().hex for _ in range(size)]
    elif batched:
        if not isinstance(rids, list) or len(rids) != size:
            raise RequestError(f"rid: expected a list of {size} ids for a batch of {size} prompts")
        rid_list = [str(r) for r in rids]
    else:
        rid_list = [str(rids)]
    return_logprob = per_prompt("return_logprob", False)
    start_len = per_prompt("logprob_start_len", -1)
    top_num = per_prompt("top_logprobs_num", 0)
    prompts = [
        PromptRequest(
            rid=rid_list[i], text=texts[i], input_ids=ids_list[i],
            params=SamplingParams.from_dict(sampling_list[i]),
            return_logprob=bool(return_logprob[i]),
            logprob_start_len=-1 if start_len[i] is None else int(start_len[i]),
            top_logprobs_num=int(top_num[i] or 0),
            return_text_in_logprobs=bool(body.get("return_text_in_logprobs", False)),
        )
        for i in range(size)
    ]
    return GenerateCall(prompts=prompts, batched=batched, stream=bool(body.get("stream", False)))
