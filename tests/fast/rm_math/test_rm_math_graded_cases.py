"""The graded-case table: every reward type of miles-rm-math on the same answers, through the registry.

Two tables:

- ``EQUIVALENCE_CASES``: (answer, label, is it correct?) — each answer is written into a response in
  the format each reward type reads (a final ``\\boxed{}``, a DAPO ``Answer:`` line, ...), and the
  expected score follows from the type: ``1``/``0`` for the binary types, ``1.0``/``-1.0`` for dapo.
- ``EXTRACTION_CASES``: literal responses whose score differs between types (where the answer is
  looked for), with the expected score written out per type.
"""

from __future__ import annotations

import pytest
from rm_math_support import score_with

BINARY_TYPES = ("math", "deepscaler", "gemma_math", "boxed_math", "boxed_deepscaler", "boxed_gemma_math")
DAPO_TYPES = ("dapo", "boxed_dapo")
ALL_TYPES = BINARY_TYPES + DAPO_TYPES

#: How a response that ends with ``answer`` looks to each reward type.
RESPONSE_FOR_TYPE = {
    "math": "Let me compute this carefully. The result is $\\boxed{{{answer}}}$.",
    "deepscaler": "<think>First guess \\boxed{{0}}, no.</think>So the final answer is \\boxed{{{answer}}}.",
    "gemma_math": "<|channel>thought\nmaybe \\boxed{{0}}<channel|>Final: \\boxed{{{answer}}}",
    "dapo": "Step 1 ... Step 2 ...\nAnswer: {answer}",
    "boxed_math": "Therefore \\boxed{{{answer}}}",
    "boxed_deepscaler": "<think>hmm</think> \\boxed{{{answer}}}",
    "boxed_gemma_math": "<channel|>\\boxed{{{answer}}}",
    "boxed_dapo": "So we get \\boxed{{{answer}}}.",
}


def expected_score(rm_type: str, correct: bool):
    return (1.0 if correct else -1.0) if rm_type in DAPO_TYPES else int(correct)


EQUIVALENCE_CASES = [
    # fractions and decimals
    ("\\frac{1}{2}", "0.5", True),
    ("0.5", "\\frac{1}{2}", True),
    ("1/2", "\\frac{1}{2}", True),
    ("\\dfrac{1}{2}", "\\frac12", True),
    ("\\tfrac{3}{4}", "0.75", True),
    ("\\frac{2}{4}", "\\frac{1}{2}", True),  # Miles refuses unreduced fractions; math-verify accepts them
    ("0.333", "\\frac{1}{3}", False),  # numbers are compared to 6 decimals
    ("\\frac{1}{3}", "\\frac{1}{2}", False),
    ("-\\frac{1}{2}", "-0.5", True),
    ("\\frac{-1}{2}", "-\\frac{1}{2}", True),
    ("1.5 \\times 10^{3}", "1500", True),
    # integers, negatives, unicode minus
    ("42", "42", True),
    ("42.0", "42", True),
    ("-7", "-7", True),
    ("\u22127", "-7", True),
    ("7", "-7", False),
    ("043", "43", True),
    ("2^{10}", "1024", True),
    # thousands separators
    ("1,000", "1000", True),
    ("1{,}000", "1000", True),
    ("1\\,000", "1000", True),
    ("1 000 000", "1000000", True),
    ("12,345,678", "12345678", True),
    # units and text around the answer
    ("5 \\text{ cm}", "5", True),
    ("5\\text{ dollars}", "5", True),
    ("5 dollars", "5", True),
    ("\\$5", "5", True),
    ("12 \\mbox{ inches}", "12", True),
    ("\\text{5}", "5", True),
    ("6 apples", "5", False),
    ("\\frac{1}{2}", "\\frac{1}{2} \\text{ cup}", True),
    ("3.", "3", True),
    ("$\\frac{1}{2}$", "1/2", True),
    # degrees
    ("30^\\circ", "30", True),
    ("30^{\\circ}", "30", True),
    ("30\u00b0", "30", True),
    ("45^\\circ", "30", False),
    # percentages
    ("50\\%", "50", True),
    ("50\\%", "0.5", True),  # math-verify reads a percentage either way
    ("25\\%", "50", False),
    # radicals and pi
    ("\\sqrt{18}", "3\\sqrt{2}", True),
    ("\u221a2", "\\sqrt{2}", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("2\u03c0", "2\\pi", True),
    ("pi", "\\pi", True),
    ("\\sqrt{2}", "\\sqrt{3}", False),
    ("e^{i\\pi}", "-1", False),  # a limit of math-verify: it does not evaluate complex exponentials
    # expressions and equations
    ("(x+1)^2", "x^2+2x+1", True),
    ("x = 5", "5", True),
    ("y = 2x+1", "2x+1", True),
    ("2x+1", "2x-1", False),
    ("2 \\times 3", "6", True),
    # intervals
    ("[1, 2)", "[1,2)", True),
    ("(1,2]", "[1,2]", False),
    ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("\\left(2, \\infty\\right)", "(2,\\infty)", True),
    ("x \\in [1,2]", "[1,2]", True),
    ("\\infty", "\\infty", True),
    # sets and tuples
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("1, 2", "2, 1", True),  # a bare list is a set for math-verify
    ("(1,2,3)", "(3,2,1)", False),  # a tuple is ordered
    ("(1,2,3)", "(1,2,3)", True),
    ("3, 5", "3, 5, 7", False),
    # matrices
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", False),
    # text answers
    ("\\text{Monday}", "Monday", True),
    ("No solution", "\\text{no solution}", True),
    ("\\text{(B)}", "B", True),
    ("B", "C", False),
    ("\\text{even}", "odd", False),
    # label forms
    ("5", 5, True),
    ("0.25", 0.25, True),
    ("0", 0, True),  # Miles's `if not ground_truth` makes the label 0 unanswerable; here it is an answer
    ("7", ["5", "7"], True),  # several acceptable answers
    ("6", ["5", "7"], False),
    ("5", "\\boxed{5}", True),
    ("5", "The answer is $\\boxed{5}$.", True),  # a whole reference solution
    ("5", None, False),
    ("5", "", False),
]


def test_table_is_large_enough():
    assert len(EQUIVALENCE_CASES) >= 60


@pytest.mark.parametrize(("answer", "label", "correct"), EQUIVALENCE_CASES,
                         ids=[f"{i:02d}:{a}|{lab}" for i, (a, lab, _) in enumerate(EQUIVALENCE_CASES)])
def test_equivalence_case_scores_per_reward_type(rm_math_manager, math_args, answer, label, correct):
    got = {}
    for rm_type in ALL_TYPES:
        reward = score_with(rm_math_manager, math_args, rm_type, RESPONSE_FOR_TYPE[rm_type].format(answer=answer), label)
        got[rm_type] = reward["score"] if rm_type in DAPO_TYPES else reward
    assert got == {rm_type: expected_score(rm_type, correct) for rm_type in ALL_TYPES}


def _scores(math=0, deepscaler=0, gemma_math=0, dapo=-1.0, boxed_math=0, boxed_deepscaler=None,
            boxed_gemma_math=None, boxed_dapo=None):
    """Expected scores per type; the boxed_ binary types default to boxed_math, boxed_dapo to its ±1 twin."""
    return {
        "math": math, "deepscaler": deepscaler, "gemma_math": gemma_math, "dapo": dapo, "boxed_math": boxed_math,
        "boxed_deepscaler": boxed_math if boxed_deepscaler is None else boxed_deepscaler,
        "boxed_gemma_math": boxed_math if boxed_gemma_math is None else boxed_gemma_math,
        "boxed_dapo": (1.0 if boxed_math else -1.0) if boxed_dapo is None else boxed_dapo,
    }


EXTRACTION_CASES = [
    ("last box counts", "First \\boxed{3}, then correcting myself: \\boxed{5}.", "5",
     _scores(math=1, gemma_math=1, boxed_math=1)),
    ("an earlier right box does not count", "\\boxed{5} ... on reflection \\boxed{3}", "5", _scores()),
    ("fbox", "so \\fbox{5}", "5", _scores(math=1, gemma_math=1, boxed_math=1)),
    ("no answer at all", "I do not know.", "5", _scores()),
    ("empty box", "\\boxed{}", "5", _scores()),
    ("unterminated box", "\\boxed{5", "5", _scores()),
    ("nested braces in the box", "\\boxed{\\frac{1}{\\sqrt{4}}}", "0.5", _scores(math=1, gemma_math=1, boxed_math=1)),
    ("deepscaler grades after </think>", "<think>maybe \\boxed{3}</think> so \\boxed{5}", "5",
     _scores(math=1, deepscaler=1, gemma_math=1, boxed_math=1)),
    ("deepscaler: box only inside the thinking", "<think>\\boxed{5}</think> done", "5",
     _scores(math=1, gemma_math=1, boxed_math=1)),
    ("deepscaler: unfinished thinking scores 0", "<think>long thoughts ... \\boxed{5}", "5",
     _scores(math=1, gemma_math=1, boxed_math=1)),
    ("deepscaler: ###Response marker", "Problem ###Response the result is \\boxed{5}", "5",
     _scores(math=1, deepscaler=1, gemma_math=1, boxed_math=1)),
    ("gemma grades after <channel|>", "<|channel>thought \\boxed{5}<channel|>no box here", "5",
     _scores(math=1, boxed_math=1)),
    ("gemma with a final box", "<|channel>thought \\boxed{3}<channel|>Final: \\boxed{5}", "5",
     _scores(math=1, gemma_math=1, boxed_math=1)),
    ("dapo: Answer line", "Reasoning.\nAnswer: 42", "42", _scores(dapo=1.0)),
    ("dapo: the last Answer line counts", "Answer: 41\nWait, recheck.\nAnswer: 42", "42", _scores(dapo=1.0)),
    ("dapo: case and spaces", "so\nanswer : 42", "42", _scores(dapo=1.0)),
    ("dapo: only the last 300 characters", "Answer: 42\n" + "and then more words. " * 20, "42", _scores()),
    ("dapo: boxed on the Answer line", "Answer: $\\boxed{42}$", "42",
     _scores(math=1, gemma_math=1, dapo=1.0, boxed_math=1)),
    ("dapo: units on the Answer line", "Answer: 42 dollars.", "42", _scores(dapo=1.0)),
    ("dapo: non-integer label", "Answer: \\frac{3}{4}", "0.75", _scores(dapo=1.0)),
]


@pytest.mark.parametrize(("response", "label", "expected"), [c[1:] for c in EXTRACTION_CASES],
                         ids=[c[0] for c in EXTRACTION_CASES])
def test_extraction_case_scores_per_reward_type(rm_math_manager, math_args, response, label, expected):
    got = {}
    for rm_type in ALL_TYPES:
        reward = score_with(rm_math_manager, math_args, rm_type, response, label)
        got[rm_type] = reward["score"] if rm_type in DAPO_TYPES else reward
    assert got == expected


def test_dapo_returns_score_acc_pred(rm_math_manager, math_args):
    right = score_with(rm_math_manager, math_args, "dapo", "work\nAnswer: $\\frac{1}{2}$.", "0.5")
    assert right == {"score": 1.0, "acc": True, "pred": "\\frac{1}{2}"}
    wrong = score_with(rm_math_manager, math_args, "dapo", "no final line", "0.5")
    assert wrong == {"score": -1.0, "acc": False, "pred": "[INVALID]"}
    assert type(right["score"]) is float and type(right["acc"]) is bool


def test_binary_types_return_int(rm_math_manager, math_args):
    for rm_type in BINARY_TYPES:
        value = score_with(rm_math_manager, math_args, rm_type, "<think></think><channel|>\\boxed{1}", "1")
        assert value == 1 and type(value) is int
