"""Built-in filters of miles-core: ``pop_first`` (buffer stage) and ``check_no_aborted`` (dynamic sampling).

``pop_first`` is the default ``--buffer-filter``: groups handed back to the data source (partial
rollouts) come out first-in, first-out. ``check_no_aborted`` drops a group in which any sample was
aborted, so a group is only trained on when all of its responses are complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miles_core.data.sample import Sample, SampleStatus, flatten_groups
from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import DynamicFilterOutput, FilterSpec

__all__ = ["pop_first", "check_no_aborted"]


def pop_first(args: Any, rollout_id: int | None, buffer: list[list[Sample]], num_samples: int) -> list[list[Sample]]:
    """Take the first ``num_samples`` groups out of ``buffer`` (in place) and return them."""
    count = max(0, min(num_samples, len(buffer)))
    taken = buffer[:count]
    del buffer[:count]
    return taken


def check_no_aborted(args: Any, samples: list[Sample], **kwargs: Any) -> DynamicFilterOutput:
    """Keep a group only when none of its samples is ABORTED."""
    if any(s.status == SampleStatus.ABORTED for s in flatten_groups(samples)):
        return DynamicFilterOutput(keep=False, reason="group_has_aborted")
    return DynamicFilterOutput(keep=True)


@hookimpl
def miles_filters() -> Iterable[FilterSpec]:
    yield FilterSpec(name="pop_first", description="Take buffered groups first-in, first-out (default --buffer-filter)",
                     fn=pop_first, stage="buffer")
    yield FilterSpec(name="check_no_aborted", description="Drop a group in which any sample was aborted",
                     fn=check_no_aborted, stage="dynamic_sampling")
