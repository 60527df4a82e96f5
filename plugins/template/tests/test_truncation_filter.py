"""The truncation_limit dynamic-sampling filter."""

import argparse

import pytest
from miles_plugin_template.truncation_filter import truncated_fraction, truncation_limit

from miles_core import DynamicFilterOutput, Sample, SampleStatus


def _group(truncated: int, completed: int) -> list[Sample]:
    return ([Sample(status=SampleStatus.TRUNCATED) for _ in range(truncated)]
            + [Sample(status=SampleStatus.COMPLETED) for _ in range(completed)])


@pytest.mark.parametrize(("truncated", "completed", "limit", "keep"), [
    (0, 4, 0.5, True), (2, 2, 0.5, True), (3, 1, 0.5, False), (4, 0, 1.0, True), (1, 3, 0.0, False),
])
def test_keeps_groups_up_to_the_limit(truncated, completed, limit, keep):
    output = truncation_limit(argparse.Namespace(max_truncated_fraction=limit), _group(truncated, completed))
    assert output == DynamicFilterOutput(keep=keep, reason=None if keep else "too_many_truncated")


def test_default_limit_and_empty_group():
    assert truncation_limit(argparse.Namespace(), _group(3, 1)).keep is False
    assert truncated_fraction([]) == 0.0
