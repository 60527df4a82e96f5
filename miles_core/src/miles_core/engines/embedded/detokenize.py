"""Incremental detokenization: the text of a growing token list, one step at a time, in O(1) per step.

Decoding only the newest token is wrong for byte-level BPE (a character may span tokens) and for
tokenizers that drop a leading space; decoding everything each step is quadratic. The standard fix
(used by TGI and vLLM) keeps two offsets: text is only emitted once the window
``ids[prefix_offset:]`` decodes to something longer than ``ids[prefix_offset:read_offset]`` and does not
end in an incomplete character (U+FFFD).
"""

from __future__ import annotations

from typing import Any

_INCOMPLETE = "\ufffd"


class IncrementalDetokenizer:
    """The text of ``ids`` as they arrive, for streaming and stop-string checks."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self.text = ""

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes (often one character, sometimes empty)."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix_text = decode(self._ids[self._prefix_offset:self._read_offset], skip_special_tokens=self._skip)
        new_text = decode(self._ids[self._prefix_offset:], skip_special_tokens=self._skip)
        if len(new_text) > len(prefix_text) and not new_text.endswith(_INCOMPLETE):
            delta = new_text[len(prefix_text):]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            self.text += delta
            return delta
        return ""
