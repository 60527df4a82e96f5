"""Reducers: per-sample mean (default), per-token sum, Dr. GRPO's constant divisor."""

from __future__ import annotations

import argparse

import pytest
import torch
from miles_core.training import reducers

LENGTHS = [3, 2]
MASKS = [torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1.0, 1.0])]
X = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])


def test_sum_of_sample_mean_per_sample():
    # (1 + 2)/2 + (4 + 5)/2; the masked 3 is ignored
    assert float(reducers.get_reducer(LENGTHS, MASKS)(X)) == pytest.approx(6.0)


def test_per_token_sum():
    assert float(reducers.get_reducer(LENGTHS, MASKS, calculate_per_token_loss=True)(X)) == pytest.approx(12.0)


def test_all_masked_sample_contributes_nothing():
    masks = [torch.zeros(3), torch.ones(2)]
    assert float(reducers.get_reducer(LENGTHS, masks)(X)) == pytest.approx(4.5)


def test_masked_nan_does_not_poison_the_sum_or_its_gradient():
    x = torch.tensor([1.0, 2.0, float("nan"), 4.0, 5.0], requires_grad=True)
    out = reducers.get_reducer(LENGTHS, MASKS)(x)
    assert float(out.detach()) == pytest.approx(6.0)
    out.backward()
    assert x.grad.tolist() == pytest.approx([0.5, 0.5, 0.0, 0.5, 0.5])


def test_shared_denominators():
    # siblings of one trajectory share one token-weighted mean: each divides by 4
    out = reducers.get_reducer(LENGTHS, MASKS, denominators=[4, 4])(X)
    assert float(out) == pytest.approx((1 + 2 + 4 + 5) / 4)


def test_miles_factory_contract():
    reduce = reducers.sum_of_sample_mean([10, 7], LENGTHS, MASKS, False)
    assert float(reduce(X)) == pytest.approx(6.0)


def test_dr_grpo_constant_divisor():
    assert float(reducers.dr_grpo([10, 7], LENGTHS, MASKS, False, divisor=10)(X)) == pytest.approx(1.2)
    from_budget = reducers.dr_grpo([10, 7], LENGTHS, MASKS, False, args=argparse.Namespace(rollout_max_response_len=4))
    assert float(from_budget(X)) == pytest.approx(3.0)
    explicit = argparse.Namespace(rollout_max_response_len=4, dr_grpo_divisor=6.0)
    assert float(reducers.dr_grpo([10, 7], LENGTHS, MASKS, False, args=explicit)(X)) == pytest.approx(2.0)
    assert float(reducers.dr_grpo([10, 7], LENGTHS, MASKS, True, divisor=10)(X)) == pytest.approx(12.0)


def test_dr_grpo_without_a_divisor_says_which_flag():
    with pytest.raises(ValueError, match="--dr-grpo-divisor"):
        reducers.dr_grpo([10, 7], LENGTHS, MASKS, False)


def test_shape_errors():
    with pytest.raises(ValueError, match="response_length is 2"):
        reducers.get_reducer([3, 2], [torch.ones(3), torch.ones(3)])
    with pytest.raises(ValueError, match="got 4 values for 5"):
        reducers.get_reducer(LENGTHS, MASKS)(torch.ones(4))
