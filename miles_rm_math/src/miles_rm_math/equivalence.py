"""Is an answer equal to a reference answer? Decided by math-verify (its latex2sympy parser), nothing else.

This is the only module that imports math-verify and sympy. It runs inside a verifier worker process
(``miles_rm_math._worker``), which bounds its time; call it directly only where a hang is acceptable.

Both sides are answer strings already extracted and normalised by the caller. Each is wrapped in
``\\boxed{}`` so math-verify treats the whole string as one LaTeX answer (a bare ``\\frac{1}{2}`` or
``\\sqrt{2}`` is otherwise not found by its extraction regexes), then parsed with its LaTeX and plain
expression extractors and compared with ``verify(gold, answer)`` (gold first: the comparison is not
symmetric for equations and intervals).

Where this differs from Miles (``grade_answer_mathd`` string rules, then ``sympy.simplify`` of the
difference after ``pylatexenc`` conversion): math-verify accepts unreduced fractions
(``\\frac{2}{4}`` for ``\\frac{1}{2}``), compares numbers to 6 decimals rather than requiring an
integer answer to match as a string, understands sets, intervals, matrices and equations
(``x = 5`` for ``5``), and treats ``50\\%`` and ``0.5`` as equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["answers_equivalent", "parse_answer"]


def parse_answer(answer: str) -> list[Any]:
    """math-verify's parse of one answer string (sympy objects, then the raw string as a fallback)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    # parsing_timeout=None: math-verify's own timeout uses signal.alarm (main thread only); our
    # worker enforces the bound itself.
    return parse("\\boxed{" + answer + "}", extraction_config=(LatexExtractionConfig(), ExprExtractionConfig()),
                 parsing_timeout=None)


def answers_equivalent(golds: Sequence[str], answer: str) -> bool:
    """True when ``answer`` is mathematically equal to any of ``golds`` according to math-verify."""
    from math_verify import verify

    parsed_answer = parse_answer(answer)
    if not parsed_answer:
        return False
    for gold in golds:
        parsed_gold = parse_answer(gold)
        if parsed_gold and verify(parsed_gold, parsed_answer, timeout_seconds=None):
            return True
    return False
