"""Calling a dynamic-sampling filter and counting what it drops.

Miles's contract: a filter returns ``DynamicFilterOutput(keep, reason)``; a legacy filter returns a
bare bool, which is wrapped. Every dropped group is counted under
``rollout/dynamic_filter/drop_<reason>`` (``drop_unspecified`` when the filter gave no reason), so
nothing leaves a rollout silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from miles_core.plugins.types import DynamicFilterOutput

__all__ = ["call_dynamic_filter", "DropCounter"]


def call_dynamic_filter(fn: Callable[..., Any] | None, args: Any, group: list[Any], **kwargs: Any) -> DynamicFilterOutput:
    """Run ``fn(args, group, **kwargs)``; no filter keeps every group."""
    if fn is None:
        return DynamicFilterOutput(keep=True)
    output = fn(args, group, **kwargs)
    if isinstance(output, DynamicFilterOutput):
        return output
    if output is None:
        raise TypeError(
            f"dynamic-sampling filter {getattr(fn, '__qualname__', fn)!r} returned None; "
            "return DynamicFilterOutput(keep=..., reason=...) or a bool"
        )
    if hasattr(output, "keep"):  # duck-typed outputs, e.g. Miles's own DynamicFilterOutput class
        return DynamicFilterOutput(keep=bool(output.keep), reason=getattr(output, "reason", None))
    return DynamicFilterOutput(keep=bool(output))  # legacy filters answer a bare bool


class DropCounter:
    """Counts dropped items by reason and renders them as metrics under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")
        self.counts: Counter[str] = Counter()

    def add(self, reason: str | None, count: int = 1) -> None:
        self.counts[_metric_safe(reason or "unspecified")] += count

    def total(self) -> int:
        return sum(self.counts.values())

    def metrics(self, *, name_prefix: str = "") -> dict[str, float]:
        return {f"{self.prefix}/{name_prefix}{reason}": float(n) for reason, n in sorted(self.counts.items())}


def _metric_safe(reason: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(reason))[:80]
