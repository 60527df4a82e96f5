"""One generated sequence (one row of the running batch): its state, its stop rules and its SGLang output.

A ``/generate`` prompt with ``n`` samples becomes ``n`` sequences. The scheduler thread owns every
sequence; the HTTP side only receives the dicts :meth:`Sequence.output` builds, through ``sink``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from miles_core.engines.embedded.detokenize import IncrementalDetokenizer
from miles_core.engines.embedded.params import SamplingParams


def finish_length(length: int) -> dict[str, Any]:
    return {"type": "length", "length": length}


def finish_stop(matched: int | str) -> dict[str, Any]:
    return {"type": "stop", "matched": matched}


def finish_abort(message: str) -> dict[str, Any]:
    return {"type": "abort", "message": message}


#: ``sink(sequence, output_dict, finished)`` delivers one result (or one stream chunk) to the HTTP side.
Sink = Callable[["Sequence", dict, bool], None]


@dataclass(eq=False)
class Sequence:
    """A sequence's request, progress and result."""

    seq_id: str  # meta_info["id"]
    rid: str  # the id /abort_request matches
    index: int  # position in the response list of its /generate call
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int  # params.max_new_tokens clamped to the context length
    generator: torch.Generator | None  # None for greedy rows
    sink: Sink
    stream: bool = False
    return_logprob: bool = False
    logprob_start_len: int = -1
    top_logprobs_num: int = 0
    return_text_in_logprobs: bool = False
    detokenizer: IncrementalDetokenizer | None = None  # set when streaming or stop strings need text
    stop_token_ids: frozenset[int] = frozenset()  # EOS ids and params.stop_token_ids (set by the scheduler)

    output_ids: list[int] = field(default_factory=list)
    output_logprobs: list[float] = field(default_factory=list)
    output_top_logprobs: list[list[tuple[float, int]]] = field(default_factory=list)
    input_logprobs: list[float | None] | None = None
    input_top_logprobs: list[list[tuple[float, int]] | None] | None = None
    finish_reason: dict[str, Any] | None = None
    abort_message: str | None = None  # set by /abort_request; the scheduler finishes the row
    stop_cut: int | None = None  # where a matched stop string starts in the text
    created_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def context_ids(self) -> list[int]:
        """What a (re)prefill feeds the model: the prompt and whatever was generated before a retraction."""
        return self.prompt_ids + self.output_ids

    def append(self, token: int, logprob: float, top: list[tuple[float, int]] | None) -> None:
        """Record one sampled token and decide whether the sequence is finished (SGLang's order of checks)."""
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.output_ids.append(token)
        self.output_logprobs.append(logprob)
        if top is not None:
            self.output_top_logprobs.append(top)
        delta = self.detokenizer.push(token) if self.detokenizer is not None else ""
        count = len(self.output_ids)
        if count >= self.max_new_tokens:
            self.finish_reason = finish_length(count)
            return
        if count < self.params.min_new_tokens:
            return
        if not self.params.ignore_eos and token in self.stop_token_ids:
            self.finish_reason = finish_stop(token)
            return
        if self.params.stop and delta:
            self._check_stop_strings(len(delta))

    def _check_stop_strings(self, delta_length: int) -> None:
        text = self.detokenizer.text
        longest = max(len(s) for s in self.params.stop)
        start = max(0, len(text) - delta_length - longest + 1)
        best: tuple[int, str] | None = None
        for stop in self.params.stop:
            position = text.find(stop, start)
            if position >= 0 and (best is None or position < best[0]):
                best = (position, stop)
        if best is not None:
            self.stop_cut = best[0]
            self.finish_reason = finish_stop(best[1])

    def abort(self, message: str) -> None:
        self.finish_reason = finish_abort(message)

    # ------------------------------------------------------------------------------------------ output

    def output(self, tokenizer: Any, weight_version: str, *, final: bool) -> dict[str, Any]:
        """SGLang's ``/generate`` response object for this sequence (cumulative, as SGLang streams it)."""
        text = self._final_text(tokenizer) if final else (self.detokenizer.text if self.detokenizer else "")
        now = time.monotonic()
        meta: dict[str, Any] = {
            "id": self.seq_id,
            "finish_reason": self.finish_reason if final else None,
            "prompt_tokens": len(self.prompt_ids),
            "completion_tokens": len(self.output_ids),
            "cached_tokens": 0,
            "weight_version": weight_version,
            "e2e_latency": now - self.created_at,
        }
        if self.return_logprob:
            decode = (lambda t: tokenizer.decode([t])) if self.return_text_in_logprobs else (lambda t: None)
            meta["output_token_logprobs"] = [
                [lp, tok, decode(tok)] for lp, tok in zip(self.output_logprobs, self.output_ids, strict=True)
            ]
            start = self.logprob_start_len
            input_ids = self.prompt_ids[start:] if start >= 0 else []
            input_lps = self.input_logprobs or [None] * len(input_ids)
            meta["input_token_logprobs"] = [[lp, tok, decode(tok)] for lp, tok in zip(input_lps, input_ids, strict=True)]
            if self.top_logprobs_num > 0:
                meta["output_top_logprobs"] = [
                    [[lp, tok, decode(tok)] for lp, tok in top] for top in self.output_top_logprobs
                ]
                meta["input_top_logprobs"] = [
                    None if top is None else [[lp, tok, decode(tok)] for lp, tok in top]
                    for top in (self.input_top_logprobs or [None] * len(input_ids))
                ]
        result = {"text": text, "output_ids": list(self.output_ids), "meta_info": meta}
        if self.stream:
            result["index"] = self.index
        return result

    def _final_text(self, tokenizer: Any) -> str:
        """The response text, with SGLang's trimming of the matched stop token or string (unless
        ``no_stop_trim``)."""
        ids = self.output_ids
        reason = self.finish_reason or {}
        trim = not self.params.no_stop_trim and reason.get("type") == "stop"
        if trim and isinstance(reason.get("matched"), int):
            ids = ids[:-1]
        text = tokenizer.decode(ids, skip_special_tokens=self.params.skip_special_tokens)
        if trim and isinstance(reason.get("matched"), str) and self.stop_cut is not None:
            text = text[:self.stop_cut]
        return text
