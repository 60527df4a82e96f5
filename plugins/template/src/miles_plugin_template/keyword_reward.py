"""The ``keyword_match`` reward: how many of the expected keywords (or regular expressions) a response has.

Useful for format and instruction-following rewards ("the answer must mention X and end with
``</answer>``") and as a cheap first reward while building a task. The expected items come from the
sample's label: one string or a list of strings; an item written ``re:PATTERN`` is a regular expression
(searched anywhere in the response), any other item is a literal keyword.

Flags (added by this plugin's ``miles_add_arguments``):

- ``--keyword-match-mode {fraction,all,any}`` (default ``fraction``): the reward is the fraction of
  items found, 1 only when all are found, or 1 when any is found.
- ``--keyword-match-case-sensitive``: match case exactly (default: ignore case).
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["MODES", "expected_items", "keyword_match_score", "keyword_match_reward"]

MODES = ("fraction", "all", "any")
REGEX_PREFIX = "re:"


def expected_items(label: Any) -> list[str]:
    """The label as a list of items: a string is one item, a list or tuple is many; nothing else is allowed."""
    if isinstance(label, str):
        items = [label]
    elif isinstance(label, (list, tuple)) and all(isinstance(item, str) for item in label):
        items = list(label)
    else:
        raise ValueError(f"keyword_match needs the label to be a string or a list of strings, got {label!r}")
    items = [item for item in items if item.strip()]
    if not items:
        raise ValueError("keyword_match needs at least one non-empty keyword in the label")
    return items


@functools.lru_cache(maxsize=4096)
def _compile(item: str, case_sensitive: bool) -> re.Pattern[str]:
    flags = 0 if case_sensitive else re.IGNORECASE
    if item.startswith(REGEX_PREFIX):
        try:
            return re.compile(item[len(REGEX_PREFIX):], flags)
        except re.error as exc:
            raise ValueError(f"keyword_match: bad regular expression {item!r} in the label: {exc}") from None
    return re.compile(re.escape(item), flags)


def keyword_match_score(response: str, label: Any, *, mode: str = "fraction", case_sensitive: bool = False) -> float:
    """The reward for one response: see the module docstring for ``mode`` and the label format."""
    if mode not in MODES:
        raise ValueError(f"--keyword-match-mode must be one of {', '.join(MODES)}, got {mode!r}")
    items = expected_items(label)
    found = sum(1 for item in items if _compile(item, case_sensitive).search(response))
    if mode == "all":
        return float(found == len(items))
    if mode == "any":
        return float(found > 0)
    return found / len(items)


async def keyword_match_reward(args: Any, sample: Any, **kwargs: Any) -> float:
    """``--rm-type keyword_match``: score ``sample.response`` against ``sample.label`` with this plugin's flags."""
    return keyword_match_score(
        sample.response,
        sample.label,
        mode=getattr(args, "keyword_match_mode", "fraction"),
        case_sensitive=bool(getattr(args, "keyword_match_case_sensitive", False)),
    )
