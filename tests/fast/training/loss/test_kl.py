"""KL estimators: hand-computed values, clamps, importance weighting."""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.training.kl import KL_TYPES, compute_approx_kl

LP = torch.tensor([-1.0, -2.0, -0.5])
REF = torch.tensor([-1.2, -1.5, -0.5])  # log-ratio = [0.2, -0.5, 0]


@pytest.mark.parametrize(
    ("kl_type", "expected"),
    [
        ("k1", [0.2, -0.5, 0.0]),
        ("k2", [0.02, 0.125, 0.0]),
        # k3: r = -log_ratio; exp(r) - 1 - r
        ("k3", [math.exp(-0.2) - 1 + 0.2, math.exp(0.5) - 1 - 0.5, 0.0]),
        ("low_var_kl", [math.exp(-0.2) - 1 + 0.2, math.exp(0.5) - 1 - 0.5, 0.0]),
    ],
)
def test_each_type_on_hand_computed_values(kl_type, expected):
    assert compute_approx_kl(LP, REF, kl_type).tolist() == pytest.approx(expected, abs=1e-6)


def test_k3_is_non_negative_and_zero_only_at_equality():
    log_ratio = torch.tensor([-3.0, -1.0, -0.1, 0.0, 0.1, 1.0, 3.0])
    kl = compute_approx_kl(log_ratio, torch.zeros(7), "k3")
    assert bool((kl[[0, 1, 2, 4, 5, 6]] > 0).all())
    assert float(kl[3]) == 0.0


def test_low_var_kl_clamps_exponent_and_result():
    lp = torch.tensor([-30.0, 30.0, float("nan"), float("-inf"), float("inf")])
    kl = compute_approx_kl(lp, torch.zeros(5), "low_var_kl")
    # r = 30 → clamped to 20 → e^20 - 21 → clamped to 10; r = -30 → -20 → e^-20 + 19 → 10
    # NaN → r = 0 → 0; -inf → r = +inf → 20 → 10; +inf → r = -inf → -20 → 10
    assert kl.tolist() == pytest.approx([10.0, 10.0, 0.0, 10.0, 10.0])
    assert bool(torch.isfinite(kl).all())


def test_k3_is_not_clamped_like_miles():
    # Miles/slime clamp only low_var_kl; verl clamps k3 to ±10 (a deliberate difference, see test_verl_parity).
    kl = compute_approx_kl(torch.tensor([30.0]), torch.tensor([0.0]), "k3")
    assert float(kl) == pytest.approx(math.exp(-30) - 1 + 30)


def test_importance_ratio_weights_the_estimate():
    ratio = torch.tensor([2.0, 0.5, 1.0])
    assert compute_approx_kl(LP, REF, "k1", importance_ratio=ratio).tolist() == pytest.approx([0.4, -0.25, 0.0])


def test_gradient_of_k1_and_k2():
    lp = LP.clone().requires_grad_()
    compute_approx_kl(lp, REF, "k2").sum().backward()
    assert lp.grad.tolist() == pytest.approx([0.2, -0.5, 0.0])  # d(x²/2)/dx = x


def test_unknown_type_names_the_choices():
    with pytest.raises(ValueError, match="k1, k2, k3, low_var_kl"):
        compute_approx_kl(LP, REF, "k4")
    assert KL_TYPES == ("k1", "k2", "k3", "low_var_kl")
