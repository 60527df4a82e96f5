"""The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in a text, with brace matching.

Used for the ``boxed_<type>`` reward names: the response is replaced by what it put in its last box,
then the ``<type>`` reward scores that (Miles's ``rm_hub`` behaviour).
"""

from __future__ import annotations

__all__ = ["last_boxed_content"]

_MARKERS = ("\\boxed", "\\fbox")


def last_boxed_content(text: str) -> str | None:
    """The text inside the last ``\\boxed{...}``/``\\fbox{...}`` (``\\boxed 5`` gives ``5``); ``None`` if there is none."""
    start = max(text.rfind(marker) for marker in _MARKERS)
    if start < 0:
        return None
    marker = next(m for m in _MARKERS if text.startswith(m, start))
    rest = text[start + len(marker):]
    if rest.startswith(" "):  # "\boxed 5": the answer runs to the next "$" or the end
        return rest[1:].split("$")[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:i]
    return None  # unbalanced braces: no complete box
