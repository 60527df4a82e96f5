"""The ``truncation_limit`` dynamic-sampling filter: drop groups where too many responses hit the length cap.

A group whose responses were mostly cut at ``--rollout-max-response-len`` teaches the policy little
(the reward sees unfinished answers) and, with GRPO, pushes it toward shorter or longer outputs for the
wrong reason. This filter drops such a group with the reason ``too_many_truncated``, which Miles counts
under ``rollout/dynamic_filter/drop_too_many_truncated``.

Flag (added by this plugin's ``miles_add_arguments``):

- ``--max-truncated-fraction F`` (default 0.5): keep a group while at most this fraction of its
  samples are truncated; 1.0 keeps everything, 0.0 drops any group with a truncated sample.
"""

from __future__ import annotations

from typing import Any

from miles_core import DynamicFilterOutput, SampleStatus

__all__ = ["DROP_REASON", "truncated_fraction", "truncation_limit"]

DROP_REASON = "too_many_truncated"


def truncated_fraction(samples: list[Any]) -> float:
    """The fraction of ``samples`` whose status is truncated (0.0 for an empty group)."""
    if not samples:
        return 0.0
    return sum(1 for sample in samples if sample.status == SampleStatus.TRUNCATED) / len(samples)


def truncation_limit(args: Any, samples: list[Any], **kwargs: Any) -> DynamicFilterOutput:
    """``--dynamic-sampling-filter truncation_limit``: keep the group unless too many samples are truncated."""
    limit = float(getattr(args, "max_truncated_fraction", 0.5))
    keep = truncated_fraction(samples) <= limit
    return DynamicFilterOutput(keep=keep, reason=None if keep else DROP_REASON)
