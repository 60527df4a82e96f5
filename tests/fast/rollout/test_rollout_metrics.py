"""Rollout metrics on hand-computed cases: pass@k, zero-std groups, lengths, weight versions."""

from __future__ import annotations

import pytest
from miles_core.rollout.rollout_metrics import (
    pass_at_k,
    pass_at_k_metrics,
    sample_metrics,
    weight_version_metrics,
    zero_std_metrics,
)

from miles_core import Sample, SampleStatus


def _group(rewards, group_index=0):
    return [Sample(index=i, group_index=group_index, reward=r, response_length=2, status=SampleStatus.COMPLETED)
            for i, r in enumerate(rewards)]


def test_pass_at_k_unbiased_estimator():
    # n=4, c=1: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 3, 2) == 1.0


def test_pass_at_k_metrics_average_over_groups(miles_args):
    groups = [_group([1, 0, 0, 0], 0), _group([1, 1, 0, 0], 1)]
    metrics = pass_at_k_metrics(miles_args(), groups)
    # group 2: pass@2 = 1 - C(2,2)/C(4,2) = 5/6
    assert metrics == pytest.approx({"passrate/pass@1": (0.25 + 0.5) / 2, "passrate/pass@2": (0.5 + 5 / 6) / 2,
                                     "passrate/pass@4": 1.0})


def test_zero_std_counts(miles_args):
    groups = [_group([1, 1]), _group([0, 0]), _group([0, 0]), _group([1, 0])]
    assert zero_std_metrics(miles_args(), groups) == {
        "rollout/zero_std/count_0.0": 2.0, "rollout/zero_std/count_1.0": 1.0,
        "rollout/zero_std/all_zero_percentage": 0.5, "rollout/zero_std/all_one_percentage": 0.25,
    }


def test_sample_metrics_use_trainable_lengths_and_raw_rewards(miles_args):
    samples = _group([1.0, 0.0, 0.5])
    samples[0].loss_mask = [1, 0]
    samples[1].status = SampleStatus.TRUNCATED
    samples[2].metadata["raw_reward"] = 2.0
    metrics = sample_metrics(miles_args(), samples)
    assert metrics["rollout/response_len/mean"] == pytest.approx(5 / 3)
    assert metrics["rollout/response_len/min"] == 1 and metrics["rollout/response_len/max"] == 2
    assert metrics["rollout/truncated_ratio"] == pytest.approx(1 / 3)
    assert metrics["rollout/raw_reward"] == pytest.approx(1.0)


def test_weight_version_metrics():
    samples = [Sample(weight_versions=["1", "2"]), Sample(weight_versions=["2"]), Sample()]
    assert weight_version_metrics(samples) == {"rollout/weight_version/mixed_version_ratio": 0.5,
                                               "rollout/weight_version/max": 2.0, "rollout/weight_version/min": 2.0}
