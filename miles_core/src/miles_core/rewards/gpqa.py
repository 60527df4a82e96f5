"""``gpqa``: multiple-choice grading (GPQA and similar), 1.0 when the response picks the correct option.

Semantics follow Miles's ``rm_hub`` GPQA reward:

1. Only the text after the last ``</think>`` is graded (the chain of thought is ignored).
2. Valid letters: ``metadata["valid_letters"]``, else ``A..`` one per ``metadata["choices"]``, else A–H.
3. The correct letter: ``metadata["correct_letter"]``, else a one-letter label, else an integer label
   (index into the choices), else a label text matched against the normalised choices.
4. The chosen letter: the last match of "answer/option/choice is X", "X is (the) correct",
   "final answer/option is X", in that order of preference; else the last standalone valid capital letter.
5. When no letter can be found, the response still scores 1.0 if it contains the correct choice's text.
"""

from __future__ import annotations

import re
import string
from typing import Any

__all__ = ["gpqa_reward", "extract_choice_letter", "correct_letter"]

_DEFAULT_LETTERS = tuple("ABCDEFGH")
_PATTERNS = (
    re.compile(r"(?i:answer|option|choice)\s*(?i:is|:)?\s*[:\-]?\s*\(?\**([A-Z])\**\)?(?![A-Za-z])"),
    re.compile(r"\(?\**([A-Z])\**\)?\s+(?i:is)\s+(?i:the\s+)?(?i:correct)"),
    re.compile(r"(?i:final\s+(?:answer|option))\s*(?i:is|:)?\s*[:\-]?\s*\(?\**([A-Z])\**\)?(?![A-Za-z])"),
)
_STANDALONE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")


def _normalize(text: str) -> str:
    text = str(text).lower().strip()
    text = text.strip(string.punctuation + " ")
    return " ".join(text.split())


def _valid_letters(metadata: dict[str, Any]) -> tuple[str, ...]:
    letters = metadata.get("valid_letters")
    if letters:
        return tuple(str(letter).strip().upper() for letter in letters)
    choices = metadata.get("choices")
    if choices:
        return tuple(string.ascii_uppercase[: len(choices)])
    return _DEFAULT_LETTERS


def correct_letter(label: Any, metadata: dict[str, Any], valid: tuple[str, ...]) -> str:
    """The letter of the correct option, from metadata or the label (see the module docstring)."""
    explicit = metadata.get("correct_letter")
    if explicit:
        return str(explicit).strip().upper()
    if isinstance(label, str) and len(label.strip()) == 1 and label.strip().upper() in valid:
        return label.strip().upper()
    if isinstance(label, int) and not isinstance(label, bool):
        if 0 <= label < len(valid):
            return valid[label]
        raise ValueError(f"gpqa: label index {label} is outside the {len(valid)} options")
    choices = metadata.get("choices")
    if label is not None and choices:
        wanted = _normalize(label)
        for i, choice in enumerate(choices):
            if _normalize(choice) == wanted and i < len(valid):
                return valid[i]
    raise ValueError(
        f"gpqa: cannot tell the correct option from label {label!r}; give metadata['correct_letter'], a letter, "
        "an index, or a label equal to one of metadata['choices']"
    )


def extract_choice_letter(response: str, valid: tuple[str, ...]) -> str | None:
    """The option letter the response commits to, or ``None``."""
    for pattern in _PATTERNS:
        letters = [m.group(1) for m in pattern.finditer(response) if m.group(1) in valid]
        if letters:
            return letters[-1]
    standalone = [m.group(1) for m in _STANDALONE.finditer(response) if m.group(1) in valid]
    return standalone[-1] if standalone else None


def gpqa_reward(args: Any, sample: Any, **kwargs: Any) -> float:
    response = sample.response or ""
    if "</think>" in response:
        response = response.rsplit("</think>", 1)[1]
    metadata = sample.metadata or {}
    valid = _valid_letters(metadata)
    correct = correct_letter(sample.label, metadata, valid)
    chosen = extract_choice_letter(response, valid)
    if chosen is not None:
        return 1.0 if chosen == correct else 0.0
    choices = metadata.get("choices")
    if choices and correct in valid and valid.index(correct) < len(choices):
        correct_text = _normalize(choices[valid.index(correct)])
        if correct_text and correct_text in _normalize(response):
            return 1.0
    return 0.0
