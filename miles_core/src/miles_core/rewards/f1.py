"""``f1``: SQuAD token-overlap F1 between the response and the label.

Source: the official SQuAD v1.1 evaluation script (``normalize_answer`` and ``f1_score``), with the
HotpotQA rule that a yes/no/noanswer answer scores 0 unless both sides are that same word. A label
that is a list of acceptable answers scores the best of them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

__all__ = ["normalize_answer", "f1_score", "f1_reward"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Harmonic mean of token precision and recall after :func:`normalize_answer`."""
    pred, truth = normalize_answer(prediction), normalize_answer(ground_truth)
    if (pred in _SPECIAL or truth in _SPECIAL) and pred != truth:
        return 0.0
    pred_tokens, truth_tokens = pred.split(), truth.split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_reward(args: Any, sample: Any, **kwargs: Any) -> float:
    label = sample.label
    if label is None:
        raise ValueError("f1 reward needs a label (--label-key)")
    truths = label if isinstance(label, (list, tuple)) else [label]
    return max(f1_score(sample.response, str(truth)) for truth in truths)
