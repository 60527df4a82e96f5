"""Advantage estimators on hand-built batches: GRPO, REINFORCE++(-baseline), GAE with masks, OPD, whitening."""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.training import advantages as adv
from miles_core.training.loss import compute_advantages_and_returns


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def assert_lists_close(actual, expected, abs=1e-6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.tolist() == pytest.approx(list(e), abs=abs)


# --------------------------------------------------------------------------------------------- scan


def _slow_discounted_cumsum(row, discount):
    out, carry = [0.0] * len(row), 0.0
    for i in range(len(row) - 1, -1, -1):
        carry = row[i] + discount * carry
        out[i] = carry
    return out


@pytest.mark.parametrize("discount", [1.0, 0.9, 0.0])
@pytest.mark.parametrize("steps", [1, 5, 128, 300])
def test_reverse_discounted_cumsum_matches_the_recurrence_across_chunks(discount, steps):
    x = torch.randn(3, steps, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)
    out = adv.reverse_discounted_cumsum(x, discount)
    for b in range(3):
        assert out[b].tolist() == pytest.approx(_slow_discounted_cumsum(x[b].tolist(), discount), abs=1e-9)


def test_reverse_discounted_cumsum_hand_case():
    # y2 = 3; y1 = 2 + 0.5·3 = 3.5; y0 = 1 + 0.5·3.5 = 2.75
    assert adv.reverse_discounted_cumsum(t(1, 2, 3)[None], 0.5)[0].tolist() == pytest.approx([2.75, 3.5, 3.0])


# --------------------------------------------------------------------------------------------- GRPO


def test_grpo_broadcasts_the_normalised_reward(make_args, estimators):
    batch = {"rewards": [0.5, -1.5], "loss_masks": [[1, 1, 0], [0, 1]]}
    estimators["grpo"].compute_advantages(make_args(kl_coef=0.3), batch)  # kl_coef is ignored by GRPO
    assert_lists_close(batch["advantages"], [[0.5, 0.5, 0.5], [-1.5, -1.5]])
    assert_lists_close(batch["returns"], [[0.5, 0.5, 0.5], [-1.5, -1.5]])


def test_gspo_advantages_equal_grpo(make_args, estimators):
    a = {"rewards": [2.0], "loss_masks": [[1, 1]]}
    b = {"rewards": [2.0], "loss_masks": [[1, 1]]}
    estimators["grpo"].compute_advantages(make_args(), a)
    estimators["gspo"].compute_advantages(make_args(), b)
    assert_lists_close(a["advantages"], [x.tolist() for x in b["advantages"]])


# --------------------------------------------------------------------------------------------- REINFORCE++


def test_reinforce_plus_plus_returns_hand_case():
    # ρ = -0.5·kl·m + r at the last trained token = [-0.05, -0.1 + 1, 0]; γ = 0.5
    # G2 = 0; G1 = 0.9; G0 = -0.05 + 0.5·0.9 = 0.4
    returns = adv.reinforce_plus_plus_returns([1.0], [t(0.1, 0.2, 0.3)], [t(1, 1, 0)], kl_coef=0.5, gamma=0.5)
    assert_lists_close(returns, [[0.4, 0.9, 0.0]])


def test_reinforce_plus_plus_discounts_across_masked_positions():
    # the reward sits on the last trained token (index 2); returns cover all response positions
    returns = adv.reinforce_plus_plus_returns([2.0], [torch.zeros(3)], [t(1, 0, 1)], kl_coef=0.0, gamma=0.5)
    assert_lists_close(returns, [[0.5, 1.0, 2.0]])


def test_reinforce_plus_plus_all_masked_sample_gives_zeros():
    returns = adv.reinforce_plus_plus_returns([5.0], [t(0.1, 0.1)], [t(0, 0)], kl_coef=1.0, gamma=1.0)
    assert_lists_close(returns, [[0.0, 0.0]])


def test_reinforce_plus_plus_estimator_uses_reward_level_kl(make_args, estimators):
    # kl (k1) = old - ref = [0.2, 0.4]; ρ = [-0.02, -0.04 + 1]; γ = 1 → G = [0.94, 0.96]
    batch = {
        "rewards": [1.0], "loss_masks": [[1, 1]],
        "log_probs": [t(-1.0, -1.0)], "ref_log_probs": [t(-1.2, -1.4)],
    }
    estimators["reinforce_plus_plus"].compute_advantages(make_args(kl_coef=0.1), batch)
    assert_lists_close(batch["advantages"], [[0.94, 0.96]])
    assert_lists_close(batch["returns"], [[0.94, 0.96]])


def test_reward_level_kl_without_reference_is_a_clear_error(make_args, estimators):
    batch = {"rewards": [1.0], "loss_masks": [[1]], "log_probs": [t(-1.0)]}
    with pytest.raises(KeyError, match="ref_log_probs"):
        estimators["reinforce_plus_plus"].compute_advantages(make_args(kl_coef=0.1), batch)


def test_reinforce_plus_plus_baseline_hand_case(make_args, estimators):
    # A = r̃ - kl_coef·kl·m = [0.5 - 0.1·0.2, 0.5] (second token untrained carries no KL)
    assert_lists_close(adv.reinforce_plus_plus_baseline_advantages([0.5], [t(0.2, 0.4)], [t(1, 0)], 0.1),
                       [[0.48, 0.5]])
    batch = {"rewards": [0.5], "loss_masks": [[1, 1]], "log_probs": [t(-1.0, -1.0)], "ref_log_probs": [t(-1.2, -1.4)]}
    estimators["reinforce_plus_plus_baseline"].compute_advantages(make_args(kl_coef=0.1), batch)
    assert_lists_close(batch["advantages"], [[0.48, 0.46]])


# --------------------------------------------------------------------------------------------- GAE


def test_gae_over_masked_tokens_hand_case():
    # trained tokens 0, 2, 3 (token 1 is tool output: its value 9 and position are skipped)
    # compact V = [0.5, 0.2, 0.4], r = [0, 0, 1], γ = 0.9, λ = 0.8, γλ = 0.72
    # δ = [0.9·0.2 - 0.5, 0.9·0.4 - 0.2, 1 - 0.4] = [-0.32, 0.16, 0.6]
    # A = [-0.32 + 0.72·0.592, 0.16 + 0.72·0.6, 0.6] = [0.10624, 0.592, 0.6]; R = A + V
    rewards = adv._terminal_token_rewards([1.0], [torch.zeros(4)], [t(1, 0, 1, 1)], kl_coef=0.0)
    advantages, returns = adv.gae_over_masked_tokens(rewards, [t(0.5, 9.0, 0.2, 0.4)], [t(1, 0, 1, 1)], 0.9, 0.8)
    assert_lists_close(advantages, [[0.10624, 0.0, 0.592, 0.6]])
    assert_lists_close(returns, [[0.60624, 0.0, 0.792, 1.0]])


def test_gae_terminal_reward_lands_on_the_last_trained_token():
    # trailing untrained tokens (e.g. an appended observation): reward goes to index 1, γ = λ = 1
    # δ = [V1 - V0, 1 - V1] = [0.5, 0.5]; A = [1.0, 0.5]
    rewards = adv._terminal_token_rewards([1.0], [torch.zeros(4)], [t(1, 1, 0, 0)], kl_coef=0.0)
    advantages, returns = adv.gae_over_masked_tokens(rewards, [t(0.0, 0.5, 7.0, 7.0)], [t(1, 1, 0, 0)], 1.0, 1.0)
    assert_lists_close(advantages, [[1.0, 0.5, 0.0, 0.0]])
    assert_lists_close(returns, [[1.0, 1.0, 0.0, 0.0]])


def _slow_masked_gae(reward, values, mask, gamma, lambd):
    idx = [i for i, m in enumerate(mask) if m]
    a_out, r_out = [0.0] * len(mask), [0.0] * len(mask)
    carry = 0.0
    for k in range(len(idx) - 1, -1, -1):
        v_next = values[idx[k + 1]] if k + 1 < len(idx) else 0.0
        r = reward if k == len(idx) - 1 else 0.0
        carry = r + gamma * v_next - values[idx[k]] + gamma * lambd * carry
        a_out[idx[k]] = carry
        r_out[idx[k]] = carry + values[idx[k]]
    return a_out, r_out


def test_gae_batched_chunked_matches_a_token_loop_on_long_masked_samples():
    gen = torch.Generator().manual_seed(0)
    lengths = [1, 130, 300, 7]
    masks = [(torch.rand(n, generator=gen) > 0.3).float() for n in lengths]
    masks[3] = torch.zeros(7)  # an all-masked sample
    values = [torch.randn(n, generator=gen) for n in lengths]
    rewards = [1.0, -0.5, 2.0, 3.0]
    token_rewards = adv._terminal_token_rewards(rewards, [torch.zeros(n) for n in lengths], masks, kl_coef=0.0)
    advantages, returns = adv.gae_over_masked_tokens(token_rewards, values, masks, 0.99, 0.95)
    for i in range(4):
        expected_a, expected_r = _slow_masked_gae(rewards[i], values[i].tolist(), masks[i].tolist(), 0.99, 0.95)
        assert advantages[i].tolist() == pytest.approx(expected_a, abs=1e-4)
        assert returns[i].tolist() == pytest.approx(expected_r, abs=1e-4)
    assert advantages[3].abs().sum() == 0


def test_ppo_estimator_reads_values_and_rewards(make_args, estimators):
    batch = {"rewards": [1.0], "loss_masks": [[1, 0, 1, 1]], "values": [t(0.5, 9.0, 0.2, 0.4)]}
    estimators["ppo"].compute_advantages(make_args(gamma=0.9, lambd=0.8), batch)
    assert_lists_close(batch["advantages"], [[0.10624, 0.0, 0.592, 0.6]])
    with pytest.raises(KeyError, match="values"):
        estimators["ppo"].compute_advantages(make_args(), {"rewards": [1.0], "loss_masks": [[1]]})


# --------------------------------------------------------------------------------------------- OPD


def test_on_policy_distillation_is_teacher_minus_student(make_args, estimators):
    # reverse KL per token = old - teacher = [0.5, -1]; A = 0 - 0.5·[0.5, -1] = [-0.25, 0.5]
    # (teacher log-probs covering prompt + response: the last len(response) are used)
    batch = {"rewards": [0.0], "loss_masks": [[1, 1]], "log_probs": [t(-1.0, -2.0)],
             "teacher_log_probs": [t(-9.0, -1.5, -1.0)]}
    estimators["on_policy_distillation"].compute_advantages(make_args(opd_kl_coef=0.5), batch)
    assert_lists_close(batch["advantages"], [[-0.25, 0.5]])


def test_on_policy_distillation_adds_to_the_group_reward_and_skips_untrained_tokens(make_args, estimators):
    batch = {"rewards": [1.0], "loss_masks": [[1, 0]], "log_probs": [t(-1.0, -2.0)], "teacher_log_probs": [t(-2.0, -1.0)]}
    estimators["on_policy_distillation"].compute_advantages(make_args(opd_kl_coef=1.0), batch)
    assert_lists_close(batch["advantages"], [[0.0, 1.0]])  # 1 - (−1 − (−2)) ; untrained token keeps the reward


def test_on_policy_distillation_needs_teacher_log_probs(make_args, estimators):
    with pytest.raises(KeyError, match="teacher"):
        estimators["on_policy_distillation"].compute_advantages(
            make_args(), {"rewards": [0.0], "loss_masks": [[1]], "log_probs": [t(-1.0)]})


# --------------------------------------------------------------------------------------------- whitening


def test_masked_whiten_hand_case():
    # trained values [1, 2, 3]: mean 2, unbiased var 1 → [-1, 0, 1]; the untrained 100 becomes 0
    out = adv.masked_whiten([t(1, 100), t(2, 3)], [t(1, 0), t(1, 1)])
    scale = 1 / math.sqrt(1 + 1e-8)
    assert_lists_close(out, [[-scale, 0.0], [0.0, scale]])


def test_masked_whiten_edge_cases():
    assert_lists_close(adv.masked_whiten([t(5.0, 6.0)], [t(0, 0)]), [[0.0, 0.0]])  # nothing trained
    assert_lists_close(adv.masked_whiten([t(5.0)], [t(1)]), [[0.0]])  # one token: centred, var 0
    assert adv.masked_whiten([], []) == []


def test_normalize_advantages_runs_after_the_estimator(make_args, estimators):
    batch = {"rewards": [1.0, 3.0], "loss_masks": [[1], [1, 0]]}
    compute_advantages_and_returns(make_args(normalize_advantages=True), batch, estimators["grpo"])
    # trained advantages [1, 3]: mean 2, unbiased var 2 → ∓1/√2
    assert_lists_close(batch["advantages"], [[-1 / math.sqrt(2)], [1 / math.sqrt(2), 0.0]])
    assert_lists_close(batch["returns"], [[1.0], [3.0, 3.0]])  # returns are not whitened


def test_compute_advantages_skips_for_sft_and_when_disabled(make_args, estimators):
    batch = {"rewards": [1.0], "loss_masks": [[1]]}
    compute_advantages_and_returns(make_args(loss_type="sft_loss"), batch, estimators["grpo"])
    compute_advantages_and_returns(make_args(disable_compute_advantages_and_returns=True), batch, estimators["grpo"])
    assert "advantages" not in batch


def test_an_estimator_that_fills_nothing_is_named(make_args):
    from miles_core.plugins.types import LossEstimatorSpec

    lazy = LossEstimatorSpec(name="lazy", description="does nothing", compute_advantages=lambda args, batch: None)
    with pytest.raises(RuntimeError, match="'lazy' did not fill"):
        compute_advantages_and_returns(make_args(), {"rewards": [1.0], "loss_masks": [[1]]}, lazy)
