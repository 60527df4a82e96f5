"""Light clean-up of an extracted answer string, only where math-verify needs help.

math-verify's LaTeX normalisation already handles ``\\dfrac``/``\\tfrac``, ``\\left``/``\\right``,
``^\\circ``, ``\\%``, ``\\$``, ``\\text{ units}``, comma thousands separators, the unicode minus,
``x = 5`` against ``5``, intervals, sets and matrices. What it gets wrong on answers models really
write, and we fix here before parsing:

- other unicode math (``×``, ``÷``, ``π``, ``∞``, ``√2``, ``30°``, ``≤``) and unicode spaces;
- thousands separated by a space, ``\\,``, ``\\ ``, ``~`` or ``{,}`` (``1\\,000`` would parse as ``1*0``);
- a trailing full stop (``\\boxed{3.}``) and stray ``$`` delimiters;
- a number followed by plain words (``5 dollars``, ``12 apples``): math-verify reads the words as a
  product of symbols; we keep the number, as Miles's unit stripping does;
- plain-word answers (``Monday``, ``No solution``): compared case-insensitively as ``\\text{...}``,
  as Miles lower-cases text answers; ``pi`` and ``infinity`` written as words are the constants.

Nothing here decides equivalence: the result is a LaTeX string handed to math-verify (and compared
verbatim as a fast path, since identical strings are always equivalent).
"""

from __future__ import annotations

import re

__all__ = ["normalize_answer", "comparison_key"]

_UNICODE_REPLACEMENTS = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2012": "-",  # figure dash
    "\ufe63": "-",  # small hyphen-minus
    "\uff0d": "-",  # full-width hyphen-minus
    "\u00d7": r"\times ",
    "\u00f7": r"\div ",
    "\u00b7": r"\cdot ",
    "\u22c5": r"\cdot ",
    "\u03c0": r"\pi ",
    "\u221e": r"\infty ",
    "\u00b0": r"^\circ ",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\ne ",
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
    "\u2007": " ",  # figure space
}
_UNICODE_PATTERN = re.compile("|".join(map(re.escape, _UNICODE_REPLACEMENTS)))
# "√2", "√x", "√{2}", "√(x+1)" → "\sqrt{...}"
_UNICODE_SQRT = re.compile(r"\u221a\s*(\d+|[A-Za-z]|\{[^{}]*\}|\([^()]*\))")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
# Digit groups of three joined by a space-like separator: "1 000", "1\,000", "12{,}345", "1~000".
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\\,|\\ |\\!|\{,\}|~| )\d{3})+(?![\d])")
_THOUSANDS_SEPARATOR = re.compile(r"\\,|\\ |\\!|\{,\}|~| ")
_TEXT_WRAPPERS = ("\\text", "\\textbf", "\\textrm", "\\mathrm", "\\mbox")
# Words that are mathematics, not units, when they follow a number ("3 pi", "2 sin x").
_MATH_WORDS = frozenset({
    "pi", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "arcsin", "arccos", "arctan",
    "sinh", "cosh", "tanh", "mod", "and", "or", "i", "e", "infty", "inf",
})
# A whole answer that is one of these words is the constant, not text.
_CONSTANT_WORDS = {"pi": "\\pi", "infinity": "\\infty", "inf": "\\infty", "infty": "\\infty"}
_NUMBER_THEN_WORDS = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s+([A-Za-z]{2,}\.?(?:\s+[A-Za-z]+\.?)*)\s*$")
_PLAIN_WORDS = re.compile(r"^[A-Za-z][A-Za-z' \-]*[A-Za-z]$")


def normalize_answer(answer: str) -> str:
    """The answer as a LaTeX string math-verify parses well (see the module docstring for each step)."""
    text = _UNICODE_PATTERN.sub(lambda m: _UNICODE_REPLACEMENTS[m.group(0)], answer)
    text = _UNICODE_SQRT.sub(lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", text)
    text = _UNESCAPED_DOLLAR.sub("", text).strip()
    text = text.rstrip(" .").strip()
    text = _unwrap_text(text)
    text = _THOUSANDS.sub(lambda m: _THOUSANDS_SEPARATOR.sub("", m.group(0)), text)
    if text.lower() in _CONSTANT_WORDS:
        return _CONSTANT_WORDS[text.lower()]
    number_then_words = _NUMBER_THEN_WORDS.match(text)
    if number_then_words and not (set(number_then_words.group(2).lower().replace(".", " ").split()) & _MATH_WORDS):
        return number_then_words.group(1)
    if _PLAIN_WORDS.match(text) and max(map(len, re.split(r"[' \-]+", text))) >= 2 and text.lower() not in _MATH_WORDS:
        return "\\text{" + " ".join(text.lower().split()) + "}"
    return text


def comparison_key(normalized: str) -> str:
    """``normalized`` without whitespace: two answers with the same key are the same LaTeX."""
    return "".join(normalized.split())


def _unwrap_text(text: str) -> str:
    """``\\text{...}`` (or ``\\textbf``, ``\\mbox``, ...) around the *whole* answer → its content."""
    for wrapper in _TEXT_WRAPPERS:
        if text.startswith(wrapper + "{") and _closing_brace(text, len(wrapper)) == len(text) - 1:
            return text[len(wrapper) + 1 : -1].strip()
    return text


def _closing_brace(text: str, open_index: int) -> int:
    """Index of the brace closing the one at ``open_index`` (``-1`` when unbalanced)."""
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1
