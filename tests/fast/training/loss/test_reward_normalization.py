"""Group reward normalisation (the one implementation; the rollout side calls it)."""

from __future__ import annotations

import math

import pytest
from miles_core.training.advantages import normalize_group_rewards


def test_group_mean_std_hand_computed():
    # group 0: [1, 3] → mean 2, unbiased std √2 → ∓1/(√2 + 1e-6); group 1: [5, 5] → std 0 → 0 (guard)
    out = normalize_group_rewards([1.0, 5.0, 3.0, 5.0], [0, 1, 0, 1], "group_mean_std")
    expected = 1 / (math.sqrt(2) + 1e-6)
    assert out == pytest.approx([-expected, 0.0, expected, 0.0], abs=1e-12)


def test_group_mean_subtracts_only_the_mean():
    assert normalize_group_rewards([1, 0, 0, 0], [7, 7, 7, 7], "group_mean") == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_std_normalization_off_is_dr_grpo():
    out = normalize_group_rewards([1, 0, 0, 0], [7, 7, 7, 7], "group_mean_std", std_normalization=False)
    assert out == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_single_sample_group_gets_zero():
    # No baseline information in a group of one (Miles); verl keeps the raw reward instead.
    assert normalize_group_rewards([1.0, 0.0, 0.5], [0, 1, 2], "group_mean_std") == [0.0, 0.0, 0.0]


def test_equal_rewards_give_zero_not_a_division():
    assert normalize_group_rewards([0.3, 0.3, 0.3], [0, 0, 0], "group_mean_std") == [0.0, 0.0, 0.0]


def test_none_returns_raw_floats():
    assert normalize_group_rewards([1, 2], [0, 0], "none") == [1.0, 2.0]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="group_mean_std, group_mean, none"):
        normalize_group_rewards([1.0], [0], "zscore")
    with pytest.raises(ValueError, match="2 rewards but 1 group"):
        normalize_group_rewards([1.0, 2.0], [0], "group_mean")
    with pytest.raises(ValueError, match="no group index"):
        normalize_group_rewards([1.0, 2.0], [0, None], "group_mean")
