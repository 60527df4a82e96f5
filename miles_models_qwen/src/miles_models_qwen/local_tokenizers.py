"""Tokenizers built on the spot with the ``tokenizers`` library: no model hub, no download.

- ``char``: one token per printable ASCII character plus Qwen's three special tokens (103 tokens). Tiny
  models learn it quickly, and token counts equal character counts, which makes tests easy to reason
  about.
- ``bpe``: a byte-level BPE in Qwen's style (NFC, Qwen2's pre-tokenizer regex with single digits,
  byte-level alphabet, special tokens after the learned vocabulary), trained on a small built-in corpus.
  Any text encodes (unknown words fall back to bytes); it is for the real-shape presets.

Both use Qwen's special tokens (``<|endoftext|>`` pad, ``<|im_end|>`` eos, ``<|im_start|>``), left
padding and a Qwen (ChatML) chat template, and load with ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL_TOKENS", "CHAT_TEMPLATE", "TokenizerKind", "CHAR_VOCAB_SIZE", "build_char_tokenizer",
           "build_bpe_tokenizer", "build_tokenizer"]

TokenizerKind = Literal["char", "bpe"]

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CHAR_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(string.printable)

# Qwen2's pre-tokenizer: contractions, letter runs, single digits, punctuation runs, newlines, spaces.
_QWEN_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BPE_TARGET_VOCAB_SIZE = 2048  # learned tokens (bytes + merges); the small corpus may stop short of it


def _wrap(tokenizer_object) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    # padding_side must be a constructor argument, or save_pretrained does not record it.
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"], padding_side="left",
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one printable character per token, plus Qwen's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + list(string.printable))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    # Oniguruma rejects "(?s)."; "[\s\S]" is any character.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return _wrap(tok)


def bpe_training_text() -> Iterator[str]:
    """The built-in corpus, plus generated arithmetic so digits, operators and answers are frequent."""
    corpus = resources.files("miles_models_qwen").joinpath("data/bpe_corpus.txt").read_text(encoding="utf-8")
    yield from corpus.splitlines(keepends=True)
    for a in range(0, 100, 7):
        for b in range(1, 60, 11):
            yield f"Question: What is {a} + {b}?\nAnswer: {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}.\n"
            yield f"Question: What is {a} times {b}?\nAnswer: {a} * {b} = {a * b}. The answer is \\boxed{{{a * b}}}.\n"


def build_bpe_tokenizer(vocab_size: int = BPE_TARGET_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the built-in corpus; the same on every call (training is deterministic)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_PRETOKENIZE_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[],
    )
    tok.train_from_iterator(bpe_training_text(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)  # after the learned vocabulary, as in Qwen's tokenizer
    return _wrap(tok)


def build_tokenizer(kind: TokenizerKind) -> PreTrainedTokenizerFast:
    if kind == "char":
        return build_char_tokenizer()
    if kind == "bpe":
        return build_bpe_tokenizer()
    raise ValueError(f"unknown tokenizer {kind!r}; choose 'char' or 'bpe'")
