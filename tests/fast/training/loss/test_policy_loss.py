"""The clipped surrogate per branch, GSPO's sequence ratio, OPSM, TIS/IcePop and ESS on hand-computed numbers."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from miles_core.training import policy_loss as pl


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def kl_for_ratio(*ratios):
    """ppo_kl = old − new = −log(ratio)."""
    return torch.tensor([-math.log(r) for r in ratios], dtype=torch.float32)


# --------------------------------------------------------------------------------------------- PPO clip


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected_pg", "expected_clip"),
    [
        (1.1, 1.0, -1.1, 0.0),   # inside [0.8, 1.28]: no clip
        (1.5, 1.0, -1.28, 1.0),  # high clip (eps_clip_high 0.28): L2 = -1.28 > L1 = -1.5
        (0.5, -1.0, 0.8, 1.0),   # low clip: L2 = 0.8 > L1 = 0.5
        (0.5, 1.0, -0.5, 0.0),   # below the range but A > 0: the unclipped term is the pessimistic one
        (1.5, -1.0, 1.5, 0.0),   # above the range with A < 0: unclipped, the loss keeps growing
    ],
)
def test_ppo_clip_branches(ratio, advantage, expected_pg, expected_clip):
    pg, clipfrac = pl.ppo_clip_loss(kl_for_ratio(ratio), t(advantage), 0.2, 0.28)
    assert float(pg) == pytest.approx(expected_pg, rel=1e-6)
    assert float(clipfrac) == expected_clip


def test_dual_clip_bounds_negative_advantages_only():
    # ratio 5, A = -1: max(L1 = 5, L2 = 1.28) = 5 → min(c·|A| = 3, 5) = 3; A = +1 is untouched (−1.28)
    pg, clipfrac = pl.ppo_clip_loss(kl_for_ratio(5.0, 5.0), t(-1.0, 1.0), 0.2, 0.28, eps_clip_c=3.0)
    assert pg.tolist() == pytest.approx([3.0, -1.28], rel=1e-6)
    assert clipfrac.tolist() == [0.0, 1.0]
    # below the bound dual clip changes nothing: ratio 2, A = -1 → max(2, 1.28) = 2 < 3
    pg, _ = pl.ppo_clip_loss(kl_for_ratio(2.0), t(-1.0), 0.2, 0.28, eps_clip_c=3.0)
    assert float(pg) == pytest.approx(2.0, rel=1e-6)


def test_dual_clip_needs_c_above_one():
    with pytest.raises(ValueError, match="eps-clip-c"):
        pl.ppo_clip_loss(t(0.0), t(-1.0), 0.2, 0.2, eps_clip_c=1.0)


def test_clip_gradient_is_zero_when_clipped():
    new = t(math.log(1.5), math.log(1.1)).requires_grad_()
    pg, _ = pl.ppo_clip_loss(torch.zeros(2) - new, t(1.0, 1.0), 0.2, 0.28)
    pg.sum().backward()
    assert new.grad.tolist() == pytest.approx([0.0, -1.1], rel=1e-6)  # d(−ratio·A)/d log π = −ratio·A


def test_extreme_log_ratios_stay_finite():
    new = t(1000.0, -1000.0, 0.0).requires_grad_()
    old = t(0.0, 0.0, float("nan"))
    mask = t(1, 1, 0)
    ppo_kl = pl.compute_ppo_kl(new, old, mask, [3])
    pg, _ = pl.ppo_clip_loss(ppo_kl, t(1.0, -1.0, 0.0), 0.2, 0.28, eps_clip_c=3.0)
    assert bool(torch.isfinite(pg).all())
    assert pg.tolist()[:2] == pytest.approx([-1.28, 0.8], rel=1e-6)
    pg.sum().backward()
    assert bool(torch.isfinite(new.grad).all())


# --------------------------------------------------------------------------------------------- ppo_kl, GSPO


def test_token_ppo_kl_is_old_minus_new_and_zero_when_masked():
    ppo_kl = pl.compute_ppo_kl(t(-1.0, -2.0, -3.0), t(-1.5, -2.5, float("nan")), t(1, 1, 0), [3])
    assert ppo_kl.tolist() == pytest.approx([-0.5, -0.5, 0.0])


def test_gspo_ratio_is_per_sequence_with_gradient_to_every_token():
    new = t(-1.0, -2.0, -3.0, -1.0).requires_grad_()
    old = t(-1.5, -2.1, -100.0, -1.2)
    # sample 0 trains tokens 0, 1: mean(old − new) = (−0.5 + −0.1)/2 = −0.3; sample 1: −0.2
    ppo_kl = pl.compute_ppo_kl(new, old, t(1, 1, 0, 1), [3, 1], sequence_level=True)
    assert ppo_kl.tolist() == pytest.approx([-0.3, -0.3, 0.0, -0.2], abs=1e-6)
    ppo_kl[0].backward()
    assert new.grad.tolist() == pytest.approx([-0.5, -0.5, 0.0, 0.0])


# --------------------------------------------------------------------------------------------- OPSM


def test_opsm_drops_stale_negative_sequences_only():
    # sample 0: A < 0, mean kl 0.3 > δ → dropped; sample 1: A < 0 but kl 0 → kept; sample 2: A > 0 → kept
    ppo_kl = t(0.3, 0.3, 0.0, 0.5)
    keep = pl.opsm_mask(ppo_kl, t(-1.0, -1.0, -1.0, 1.0), t(1, 1, 1, 1), [2, 1, 1], delta=1e-4)
    assert keep.tolist() == [0.0, 0.0, 1.0, 1.0]


# --------------------------------------------------------------------------------------------- TIS


def _tis_case():
    # w = exp(train − rollout) = [1, 3, 0.1, 0.5]
    train = [t(-1.0, -1.0), t(-1.0, -1.0)]
    rollout = [t(-1.0, -1.0 - math.log(3.0)), t(-1.0 - math.log(0.1), -1.0 - math.log(0.5))]
    return train, rollout


def test_vanilla_tis_clamps_both_sides():
    train, rollout = _tis_case()
    args = argparse.Namespace(tis_clip_low=0.2, tis_clip=2.0)
    pg, masks, metrics = pl.vanilla_tis(args=args, pg_loss=torch.ones(4), train_log_probs=train,
                                        rollout_log_probs=rollout, loss_masks=[t(1, 1), t(1, 1)])
    assert pg.tolist() == pytest.approx([1.0, 2.0, 0.2, 0.5], rel=1e-5)  # 3 → 2 (high), 0.1 → 0.2 (low)
    assert metrics["tis"].tolist() == pytest.approx([1.0, 3.0, 0.1, 0.5], rel=1e-5)
    assert metrics["tis_clipfrac"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert metrics["tis_abs"].tolist() == pytest.approx([0.0, 2.0, 0.9, 0.5], abs=1e-5)
    assert masks[0].tolist() == [1.0, 1.0]


def test_icepop_zeroes_outside_the_band():
    train, rollout = _tis_case()
    args = argparse.Namespace(tis_clip_low=0.2, tis_clip=2.0)
    pg, _, metrics = pl.icepop(args=args, pg_loss=torch.ones(4), train_log_probs=train,
                               rollout_log_probs=rollout, loss_masks=[t(1, 1), t(1, 1)])
    assert pg.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.5], rel=1e-5)
    assert metrics["tis_clipfrac"].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_tis_weight_of_a_wild_token_is_finite():
    args = argparse.Namespace(tis_clip_low=0.0, tis_clip=2.0)
    pg, _, metrics = pl.vanilla_tis(args=args, pg_loss=torch.ones(1), train_log_probs=[t(0.0)],
                                    rollout_log_probs=[t(-500.0)], loss_masks=[t(1)])
    assert float(pg) == 2.0
    assert bool(torch.isfinite(metrics["tis"]).all())


# --------------------------------------------------------------------------------------------- ESS


def test_ess_ratio_per_sample():
    # sample 0: w = [1, 2] → (3)² / (2·5) = 0.9; sample 1: on-policy → 1; untrained token → 0
    ppo_kl = t(0.0, -math.log(2.0), 0.0, 0.0)
    ess = pl.ess_ratio_per_token(ppo_kl, t(1, 1, 1, 0), [2, 2])
    assert ess.tolist() == pytest.approx([0.9, 0.9, 1.0, 0.0], rel=1e-6)
