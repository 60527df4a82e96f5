"""One sequence's stop rules, text trimming and SGLang output, with a byte-level fake tokenizer."""

from __future__ import annotations

from miles_core.engines.embedded.detokenize import IncrementalDetokenizer
from miles_core.engines.embedded.params import SamplingParams
from miles_core.engines.embedded.sequence import Sequence

EOS = 256


class ByteTokenizer:
    """Token = one UTF-8 byte; 256 is a special EOS token. Multi-byte characters span tokens."""

    def decode(self, ids, skip_special_tokens=True):
        data = bytes(i for i in ids if i < 256)
        text = data.decode("utf-8", errors="replace")
        if not skip_special_tokens and EOS in ids:
            text += "<eos>"
        return text


def ids(text: str) -> list[int]:
    return list(text.encode())


def make(params: dict | None = None, **kwargs) -> Sequence:
    sampling = SamplingParams.from_dict(params or {})
    seq = Sequence(seq_id="s", rid="r", index=0, prompt_ids=ids("hi"), params=sampling,
                   max_new_tokens=sampling.max_new_tokens, generator=None, sink=lambda *a: None,
                   detokenizer=IncrementalDetokenizer(ByteTokenizer(), sampling.skip_special_tokens), **kwargs)
    seq.stop_token_ids = frozenset({EOS, *sampling.stop_token_ids})
    return seq


def feed(seq: Sequence, tokens: list[int]) -> int:
    for n, token in enumerate(tokens, 1):
        seq.append(token, -0.5, None)
        if seq.finished:
            return n
    return len(tokens)


def test_incremental_detokenizer_waits_for_whole_characters():
    detok = IncrementalDetokenizer(ByteTokenizer(), True)
    deltas = [detok.push(b) for b in "aé€".encode()]
    assert deltas == ["a", "", "é", "", "", "€"] and detok.text == "aé€"


def test_length_finish():
    seq = make({"max_new_tokens": 3})
    assert feed(seq, ids("abcdef")) == 3
    assert seq.finish_reason == {"type": "length", "length": 3}


def test_eos_stops_and_is_kept_in_tokens_but_not_in_text():
    seq = make({"max_new_tokens": 10})
    feed(seq, ids("ab") + [EOS] + ids("zz"))
    assert seq.finish_reason == {"type": "stop", "matched": EOS}
    out = seq.output(ByteTokenizer(), "3", final=True)
    assert out["output_ids"] == ids("ab") + [EOS] and out["text"] == "ab"
    assert out["meta_info"]["weight_version"] == "3" and out["meta_info"]["completion_tokens"] == 3


def test_stop_string_trims_text_unless_no_stop_trim():
    seq = make({"max_new_tokens": 20, "stop": ["END", "\n\n"]})
    feed(seq, ids("one END two"))
    assert seq.finish_reason == {"type": "stop", "matched": "END"}
    assert seq.output(ByteTokenizer(), "0", final=True)["text"] == "one "
    assert seq.output_ids == ids("one END")  # tokens up to and including the match are kept
    kept = make({"max_new_tokens": 20, "stop": "END", "no_stop_trim": True})
    feed(kept, ids("one END two"))
    assert kept.output(ByteTokenizer(), "0", final=True)["text"] == "one END"


def test_earliest_stop_string_wins():
    seq = make({"max_new_tokens": 20, "stop": ["bc", "abcd"]})
    feed(seq, ids("xabcd"))
    assert seq.finish_reason["matched"] == "bc"


def test_nothing_stops_before_min_new_tokens_and_ignore_eos_disables_stop_tokens():
    seq = make({"max_new_tokens": 10, "min_new_tokens": 4, "stop": "a"})
    assert feed(seq, ids("aa") + [EOS] + ids("aq")) == 4  # the 'a' at position 4 is the first allowed stop
    assert seq.finish_reason == {"type": "stop", "matched": "a"}
    free = make({"max_new_tokens": 4, "ignore_eos": True, "stop_token_ids": [ord("x")]})
    feed(free, [EOS, ord("x"), EOS, ord("x")])
    assert free.finish_reason == {"type": "length", "length": 4}


def test_output_carries_sglangs_logprob_triples_and_input_logprobs():
    seq = make({"max_new_tokens": 2}, return_logprob=True, logprob_start_len=1, top_logprobs_num=1)
    seq.input_logprobs = [None]
    seq.input_top_logprobs = [None]
    seq.append(ord("o"), -0.25, [(-0.25, ord("o"))])
    seq.append(ord("k"), -1.5, [(-0.5, ord("x"))])
    meta = seq.output(ByteTokenizer(), "0", final=True)["meta_info"]
    assert meta["output_token_logprobs"] == [[-0.25, ord("o"), None], [-1.5, ord("k"), None]]
    assert meta["input_token_logprobs"] == [[None, ord("i"), None]]
    assert meta["output_top_logprobs"] == [[[-0.25, ord("o"), None]], [[-0.5, ord("x"), None]]]
    assert meta["finish_reason"] == {"type": "length", "length": 2} and meta["prompt_tokens"] == 2


def test_unfinished_stream_chunks_have_no_finish_reason_and_abort_keeps_tokens():
    seq = make({"max_new_tokens": 10}, stream=True)
    feed(seq, ids("ab"))
    chunk = seq.output(ByteTokenizer(), "0", final=False)
    assert chunk["meta_info"]["finish_reason"] is None and chunk["text"] == "ab" and chunk["index"] == 0
    seq.abort("stop now")
    final = seq.output(ByteTokenizer(), "0", final=True)
    assert final["meta_info"]["finish_reason"] == {"type": "abort", "message": "stop now"}
    assert final["output_ids"] == ids("ab") and final["text"] == "ab"
