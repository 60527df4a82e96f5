"""Parity with verl's ``core_algos`` (reference values from research/peers.md §4.2, computed with verl 0.9.1).

Where verl's definition differs from Miles's on purpose, the test says so and checks our (Miles) side.
"""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.training import advantages as adv
from miles_core.training import policy_loss as pl
from miles_core.training.kl import compute_approx_kl
from miles_core.training.reducers import get_reducer

# groups [1, 0, 0, 1] and [1, 1, 1, 0]
REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
GROUPS = [0, 0, 0, 0, 1, 1, 1, 1]


def test_grpo_advantages_match_verl():
    verl = [0.866024, -0.866024, -0.866024, 0.866024, 0.499999, 0.499999, 0.499999, -1.499997]
    assert adv.normalize_group_rewards(REWARDS, GROUPS, "group_mean_std") == pytest.approx(verl, abs=1e-6)


def test_dr_grpo_advantages_match_verl():
    verl = [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75]
    assert adv.normalize_group_rewards(REWARDS, GROUPS, "group_mean_std", std_normalization=False) == pytest.approx(verl)
    assert adv.normalize_group_rewards(REWARDS, GROUPS, "group_mean") == pytest.approx(verl)


def test_group_of_one_differs_from_verl_on_purpose():
    # verl: a group of one has mean 0 / std 1, so its advantage is the raw reward. Miles (and we): r − mean = 0.
    assert adv.normalize_group_rewards([1.0], [0], "group_mean_std") == [0.0]


@pytest.mark.parametrize(
    ("kl_type", "verl"),
    [("k1", [0.2, -0.5, 0.0]), ("k2", [0.02, 0.125, 0.0]), ("k3", [0.018731, 0.148721, 0.0]),
     ("low_var_kl", [0.018731, 0.148721, 0.0])],
)
def test_kl_estimators_match_verl_kl_penalty(kl_type, verl):
    lp, ref = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.2, -1.5, -0.5])
    assert compute_approx_kl(lp, ref, kl_type).tolist() == pytest.approx(verl, abs=1e-6)


def test_k3_clamp_differs_from_verl_on_purpose():
    # verl clamps k3 (= low_var_kl there) to ±10; Miles clamps only low_var_kl, so only that one matches.
    far = torch.tensor([30.0]), torch.tensor([0.0])
    assert float(compute_approx_kl(*far, "low_var_kl")) == 10.0
    assert float(compute_approx_kl(*far, "k3")) > 10.0


def test_policy_loss_matches_verl_vanilla_semantics():
    """verl ``compute_policy_loss_vanilla`` with clip_ratio_low 0.2, high 0.28, c 3.0 and ``token-mean``.

    peers.md records verl's result on "a 2×3 case" (0.314059, clipfrac 1/3) but not its inputs, so this
    re-derives verl's definition on our own 2×3 case, by hand: log-ratio clamped to ±20, dual clip for
    A < 0 only, clipfrac = 1[clipped loss > unclipped loss], token-mean over the mask (our per-token mode
    with one global denominator).
    """
    ratios = [[1.5, 0.5, 1.0], [5.0, 0.9, 2.0]]
    advantages = [[1.0, -1.0, 0.5], [-1.0, 2.0, -1.0]]
    mask = [[1, 1, 1], [1, 1, 0]]
    # per token: [−1.28, 0.8, −0.5], [min(3, 5) = 3, −1.8, (masked)]
    expected_tokens = [-1.28, 0.8, -0.5, 3.0, -1.8]
    ppo_kl = torch.tensor([-math.log(r) for row in ratios for r in row])
    flat_adv = torch.tensor([a for row in advantages for a in row])
    flat_mask = torch.tensor([m for row in mask for m in row], dtype=torch.float32)
    pg, clipfrac = pl.ppo_clip_loss(ppo_kl, flat_adv, 0.2, 0.28, eps_clip_c=3.0)
    token_sum = get_reducer([3, 3], [flat_mask[:3], flat_mask[3:]], calculate_per_token_loss=True)
    token_mean = float(token_sum(pg)) / float(flat_mask.sum())
    assert token_mean == pytest.approx(sum(expected_tokens) / 5, rel=1e-6)
    assert float(token_sum(clipfrac)) / 5 == pytest.approx(2 / 5)  # tokens 0 and 1 are clipped


def test_gae_without_masks_matches_the_textbook_recurrence():
    # verl compute_gae_advantage_return on a fully trained response (verl then whitens; Miles does that only
    # with --normalize-advantages): γ = 1, λ = 0.95, reward 1 at the end, V = [0.1, 0.2, 0.3]
    # δ = [0.1, 0.1, 0.7]; A2 = 0.7, A1 = 0.1 + 0.95·0.7 = 0.765, A0 = 0.1 + 0.95·0.765 = 0.82675
    rewards = adv._terminal_token_rewards([1.0], [torch.zeros(3)], [torch.ones(3)], kl_coef=0.0)
    advantages, returns = adv.gae_over_masked_tokens(rewards, [torch.tensor([0.1, 0.2, 0.3])], [torch.ones(3)], 1.0, 0.95)
    assert advantages[0].tolist() == pytest.approx([0.82675, 0.765, 0.7], abs=1e-6)
    assert returns[0].tolist() == pytest.approx([0.92675, 0.965, 1.0], abs=1e-6)
