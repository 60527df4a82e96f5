"""From a label and an extracted answer to a :class:`Verdict`: normalise, short-cut, cache, then math-verify.

The expensive part (math-verify in a worker process) is skipped when it cannot change the result:

- an empty answer or a label with no usable reference is ``different`` at once;
- an answer whose normalised LaTeX equals a reference's (ignoring spaces) is ``equivalent`` at once,
  which is most correct answers in a GRPO group (``\\boxed{42}`` for label ``42``);
- a pair already checked in this process is answered from a bounded LRU cache (samples of one group
  share a label and often an answer). Timeouts and errors are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from miles_rm_math.extraction import last_boxed_answer
from miles_rm_math.normalization import comparison_key, normalize_answer
from miles_rm_math.verifier_pool import Verdict, VerifierPool

__all__ = ["reference_answers", "check_answer", "clear_cache"]

_CACHE_SIZE = 16384
_cache: OrderedDict[tuple[tuple[str, ...], str], Verdict] = OrderedDict()
_cache_lock = threading.Lock()


def reference_answers(label: Any) -> list[str]:
    """The normalised reference answers of a label.

    A string label may be a whole solution: its last ``\\boxed{}`` is the answer (Miles). A list or
    tuple label gives several acceptable answers. Numbers are written with ``str``. ``None`` and
    empty strings give no reference (the sample scores as wrong). Unlike Miles, the label ``0`` is a
    valid answer (Miles's ``if not ground_truth`` rejects it).
    """
    if label is None:
        return []
    if isinstance(label, (list, tuple)):
        return [answer for item in label for answer in reference_answers(item)]
    text = str(label).strip()
    if "\\boxed" in text or "\\fbox" in text:
        text = last_boxed_answer(text) or text
    normalized = normalize_answer(text)
    return [normalized] if normalized else []


def check_answer(golds: Sequence[str], answer: str | None, pool: VerifierPool) -> Verdict:
    """Is ``answer`` (raw, as extracted) equal to one of the normalised ``golds``?"""
    normalized = normalize_answer(answer) if answer else ""
    if not normalized or not golds:
        return Verdict("different", "no answer" if not normalized else "the label has no reference answer")
    key = comparison_key(normalized)
    if any(key == comparison_key(gold) for gold in golds):
        return Verdict("equivalent")
    cache_key = (tuple(golds), normalized)
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            _cache.move_to_end(cache_key)
            return cached
    verdict = pool.check(golds, normalized)
    if not verdict.failed:
        with _cache_lock:
            _cache[cache_key] = verdict
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return verdict


def clear_cache() -> None:
    """Forget every cached verdict (benchmarks measure uncached checks)."""
    with _cache_lock:
        _cache.clear()
