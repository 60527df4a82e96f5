"""DAPO's overlong filtering: truncated responses keep their place but teach nothing.

DAPO (Yu et al. 2025, arXiv:2503.14476, "Overlong Reward Shaping") masks the loss of truncated
samples: a response cut by the length cap is scored as if it had given a wrong answer, though its
reasoning may have been sound, and that noise destabilises training. This per-sample filter
(``--rollout-sample-filter mask_truncated``) sets ``remove_sample`` on every TRUNCATED sample of the
rollout batch; the training batch then zeroes its loss mask while its reward still counts in its
group's normalisation (Miles's ``remove_sample`` semantics). Use it instead of, or with, the soft
overlong punishment (``--overlong-buffer-len``).
"""

from __future__ import annotations

from typing import Any

from miles_core.data.sample import SampleStatus, flatten_groups

__all__ = ["mask_truncated"]


def mask_truncated(args: Any, data: list[list[Any]]) -> None:
    """Mark every truncated sample of the batch ``remove_sample = True`` (in place)."""
    for sample in flatten_groups(data):
        if sample.status == SampleStatus.TRUNCATED:
            sample.remove_sample = True
