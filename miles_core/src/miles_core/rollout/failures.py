"""Marking a sample FAILED with its reason, in one place, so every failure is counted the same way.

``metadata["error"]`` holds the full message a user reads; ``metadata["error_kind"]`` a short category
(``generate``, ``reward``) used for the metric ``rollout/failed/<kind>``.
"""

from __future__ import annotations

from miles_core.data.sample import Sample, SampleStatus

__all__ = ["mark_failed", "failure_kind", "RolloutFailedError"]


def mark_failed(sample: Sample, kind: str, message: str) -> None:
    """Set ``sample`` FAILED with ``message``; the first failure of a sample is the one kept."""
    sample.status = SampleStatus.FAILED
    sample.metadata.setdefault("error", message)
    sample.metadata.setdefault("error_kind", kind)


def failure_kind(sample: Sample) -> str:
    return str(sample.metadata.get("error_kind") or "unknown")


class RolloutFailedError(RuntimeError):
    """Every sample of a rollout failed; the message carries the first error."""
