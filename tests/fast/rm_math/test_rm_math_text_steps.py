"""The string steps before math-verify: Miles's extraction rules and our light normalisation."""

from __future__ import annotations

import pytest
from miles_rm_math.answer_check import reference_answers
from miles_rm_math.extraction import dapo_answer_line, deepscaler_segment, gemma_segment, last_boxed_answer
from miles_rm_math.normalization import comparison_key, normalize_answer


@pytest.mark.parametrize(("text", "expected"), [
    ("a \\boxed{1} b \\boxed{2}", "2"),
    ("\\boxed{1} then \\fbox{3}", "3"),
    ("\\fbox{3} then \\boxed{4}", "4"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{", None),
    ("\\boxed{}", None),
    ("no box", None),
])
def test_last_boxed_answer(text, expected):
    assert last_boxed_answer(text) == expected


def test_dapo_answer_line_uses_the_last_line_in_the_window():
    assert dapo_answer_line("Answer: 1\nAnswer: 2\n") == "2"
    assert dapo_answer_line("ANSWER:3") == "3"
    assert dapo_answer_line("Answer: 1\n" + "x" * 300) is None
    assert dapo_answer_line("Answer:   \n") is None


def test_segments():
    assert deepscaler_segment("<think>a</think>b</think>c") == "c"
    assert deepscaler_segment("p ###Response r ###Response s") == " r ###Response s"
    assert deepscaler_segment("plain") is None
    assert gemma_segment("a<channel|>b<channel|>c") == "c"
    assert gemma_segment("plain") == "plain"


@pytest.mark.parametrize(("raw", "normalized"), [
    ("\u22123", "-3"),
    ("2\u00d73", "2\\times 3"),
    ("\u221a2", "\\sqrt{2}"),
    ("\u221a(x+1)", "\\sqrt{x+1}"),
    ("30\u00b0", "30^\\circ"),
    ("$5$.", "5"),
    ("\\$5", "\\$5"),  # an escaped dollar is currency: math-verify drops it
    ("1\\,000", "1000"),
    ("1 000 000", "1000000"),
    ("12{,}345", "12345"),
    ("1, 2", "1, 2"),  # a list, not a thousands separator
    ("5 dollars", "5"),
    ("3 pi", "3 pi"),  # mathematics, not a unit
    ("2 x", "2 x"),
    ("Monday", "\\text{monday}"),
    ("\\text{No Solution}", "\\text{no solution}"),
    ("\\text{a}+\\text{b}", "\\text{a}+\\text{b}"),
    ("Infinity", "\\infty"),
    ("A", "A"),
])
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_comparison_key_ignores_spaces():
    assert comparison_key("\\frac{1}{2} ") == comparison_key("\\frac {1}{2}")


def test_reference_answers():
    assert reference_answers("The answer is \\boxed{7}.") == ["7"]
    assert reference_answers(["1", 2, None, ""]) == ["1", "2"]
    assert reference_answers(0) == ["0"]
    assert reference_answers(None) == [] and reference_answers("  ") == []
