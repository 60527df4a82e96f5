"""Where the final answer sits in a response: the extraction steps Miles defines, and nothing more.

Each math reward first picks the *segment* of the response that may hold the answer, then the
*answer string* inside it. Both steps are plain string operations (no sympy), so they run in the
caller's thread and cannot hang; only the equivalence check goes to a math-verify worker.

Miles's rules (``miles/rollout/rm_hub``):

- ``math``: the answer is the content of the last ``\\boxed{}`` / ``\\fbox{}`` of the response.
- ``deepscaler``: the segment is the text after the last ``</think>``, else after the first
  ``###Response``; a response with neither scores 0. Then the last box, as ``math``.
- ``gemma_math``: the segment is the text after the last ``<channel|>`` when there is one, else the
  whole response (Gemma-4 closes its reasoning with that tag). Then the last box.
- ``dapo``: the segment is the last 300 characters; the answer is the last ``Answer: ...`` line
  (Minerva format), else ``"[INVALID]"``.

Where we differ from Miles: Miles's ``extract_answer`` only looks for a box when the text contains
``\\boxed`` (an ``\\fbox{}`` alone is missed) and cuts a ``###Response`` segment at a second
``###Response``; we take the last ``\\boxed{}`` *or* ``\\fbox{}``, and everything after the first
``###Response``.
"""

from __future__ import annotations

import re

from miles_core.rewards.boxed import last_boxed_content

__all__ = [
    "DAPO_INVALID_ANSWER",
    "DAPO_WINDOW_CHARS",
    "last_boxed_answer",
    "dapo_answer_line",
    "deepscaler_segment",
    "gemma_segment",
]

#: DAPO (verl's ``math_dapo.compute_score``) only looks at the end of a response.
DAPO_WINDOW_CHARS = 300
#: What DAPO reports as ``pred`` when the response has no ``Answer:`` line.
DAPO_INVALID_ANSWER = "[INVALID]"

_DAPO_ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")


def last_boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` of ``text`` (brace-matched), or ``None``.

    One implementation in the whole project: ``miles_core.rewards.boxed.last_boxed_content``.
    """
    content = last_boxed_content(text)
    if content is None or not content.strip():
        return None
    return content


def dapo_answer_line(response: str) -> str | None:
    """What follows the last ``Answer:`` in the last 300 characters of ``response`` (DAPO's extraction)."""
    matches = _DAPO_ANSWER_LINE.findall(response[-DAPO_WINDOW_CHARS:])
    if not matches:
        return None
    answer = matches[-1].strip()
    return answer or None


def deepscaler_segment(response: str) -> str | None:
    """The text after the last ``</think>``, else after the first ``###Response``; ``None`` when neither is there."""
    if "</think>" in response:
        return response.rpartition("</think>")[2]
    if "###Response" in response:
        return response.partition("###Response")[2]
    return None


def gemma_segment(response: str) -> str:
    """The text after the last ``<channel|>`` (Gemma-4's end of reasoning), else the whole response."""
    if "<channel|>" in response:
        return response.rpartition("<channel|>")[2]
    return response
