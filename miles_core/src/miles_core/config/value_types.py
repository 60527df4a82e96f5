"""argparse ``type=`` converters whose errors say what a valid value looks like."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["positive_int", "non_negative_int", "non_negative_float", "json_object", "fraction"]


def positive_int(text: str) -> int:
    """An integer ≥ 1 (batch sizes, counts, intervals)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (seconds, layer counts, ids)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A float ≥ 0 (coefficients, temperatures)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A float in (0, 1] (top-p)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """A JSON object given inline, e.g. ``'{"enable_thinking": false}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object ({{...}}), got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


# argparse prints ``invalid <__name__> value``; make those names read well.
positive_int.__name__ = "positive integer"
non_negative_int.__name__ = "non-negative integer"
non_negative_float.__name__ = "non-negative number"
fraction.__name__ = "fraction"
json_object.__name__ = "JSON object"
