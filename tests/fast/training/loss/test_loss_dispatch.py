"""``micro_batch_loss``: the whole policy loss on hand-built micro-batches, scaling across micro-batches
and data-parallel ranks, ``--loss-type`` dispatch and the ``--custom-*-path`` hooks."""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.training.loss import count_loss_tokens, loss_scale, micro_batch_loss

MILES_METRICS = {
    "loss", "pg_loss", "entropy_loss", "pg_clipfrac", "ppo_kl", "ess_ratio", "train_rollout_logprob_abs_diff",
    "train_rollout_kl", "kl_loss", "ois", "tis", "tis_clipfrac", "tis_abs", "opsm_clipfrac", "opd_reverse_kl",
}


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def one_sample(**extra):
    """One sample, two trained tokens, advantage 1, current policy equal to the old one."""
    batch = {"loss_masks": [[1, 1]], "advantages": [t(1.0, 1.0)], "log_probs": [t(-1.0, -2.0)]}
    batch.update(extra)
    return batch


def run(args, batch, estimator, new=None, entropy=None, **scale):
    new = [x.clone().requires_grad_() for x in (new or batch["log_probs"])]
    scale.setdefault("global_batch_size", len(batch["loss_masks"]))
    loss, metrics = micro_batch_loss(args, batch, new, entropy, estimator, **scale)
    return loss, {k: float(v) for k, v in metrics.items()}, new


# --------------------------------------------------------------------------------------------- total loss


def test_total_loss_with_entropy_bonus_and_kl_loss(make_args, estimators):
    # pg = -ratio·A = -1 per token → pg_loss -1; entropy mean 1.0; k1 KL = new − ref = [0.2, −0.5] → −0.15
    # loss = −1 − 0.1·1 + 0.5·(−0.15) = −1.175
    args = make_args(entropy_coef=0.1, use_kl_loss=True, kl_loss_coef=0.5, kl_loss_type="k1")
    batch = one_sample(ref_log_probs=[t(-1.2, -1.5)])
    loss, metrics, new = run(args, batch, estimators["grpo"], entropy=[t(0.5, 1.5)])
    assert loss.item() == pytest.approx(-1.175, rel=1e-6)
    assert metrics["loss"] == pytest.approx(-1.175, rel=1e-6)
    assert metrics["pg_loss"] == pytest.approx(-1.0)
    assert metrics["entropy_loss"] == pytest.approx(1.0)
    assert metrics["kl_loss"] == pytest.approx(-0.15, rel=1e-5)
    assert metrics["pg_clipfrac"] == 0.0 and metrics["ppo_kl"] == 0.0 and metrics["ess_ratio"] == pytest.approx(1.0)
    loss.backward()
    # d/dlogπ_t: −A/2 (pg) + 0.5·(1/2) (k1 KL) per token
    assert new[0].grad.tolist() == pytest.approx([-0.25, -0.25])


def test_step_zero_invariants(make_args, estimators):
    # Miles CI (check_kl): with π = π_old = π_ref, ppo_kl, pg_clipfrac and kl_loss are 0
    args = make_args(use_kl_loss=True, kl_loss_coef=0.01, kl_loss_type="low_var_kl")
    batch = one_sample(ref_log_probs=[t(-1.0, -2.0)], advantages=[t(-0.7, -0.7)])
    _, metrics, _ = run(args, batch, estimators["grpo"])
    assert metrics["ppo_kl"] == 0.0 and metrics["pg_clipfrac"] == 0.0 and metrics["kl_loss"] == 0.0


def test_gspo_uses_the_sequence_ratio(make_args, estimators):
    # seq ppo_kl = mean(old − new) = −0.3 → ratio e^0.3 = 1.35 > 1.28 → every token clipped: −1.28
    batch = one_sample(log_probs=[t(-1.5, -2.1)])
    _, metrics, _ = run(make_args(eps_clip_high=0.28), batch, estimators["gspo"], new=[t(-1.0, -2.0)])
    assert metrics["pg_loss"] == pytest.approx(-1.28, rel=1e-6)
    assert metrics["pg_clipfrac"] == 1.0
    assert metrics["ppo_kl"] == pytest.approx(-0.3, rel=1e-5)
    assert metrics["ess_ratio"] == pytest.approx(1.0)  # one ratio per sequence


def test_use_rollout_logprobs_takes_the_engine_as_old_policy(make_args, estimators):
    # ratio = exp(new − rollout) = [3, 0.5], A = 1: token 0 clipped to −1.2, token 1 unclipped −0.5
    batch = one_sample(rollout_log_probs=[t(-1.0 - math.log(3.0), -2.0 + math.log(2.0))])
    del batch["log_probs"]
    _, metrics, _ = run(make_args(use_rollout_logprobs=True), batch, estimators["grpo"], new=[t(-1.0, -2.0)])
    assert metrics["pg_loss"] == pytest.approx(-0.85, rel=1e-5)
    assert metrics["pg_clipfrac"] == 0.5
    assert metrics["ppo_kl"] == pytest.approx((-math.log(3.0) + math.log(2.0)) / 2, rel=1e-5)
    assert "train_rollout_logprob_abs_diff" not in metrics  # no trainer-side old log-probs to compare


# --------------------------------------------------------------------------------------------- TIS and mismatch

ROLLOUT = [t(-1.0 - math.log(3.0), -2.0 + math.log(2.0))]  # w = exp(train − rollout) = [3, 0.5]


def test_tis_reweights_and_reports(make_args, estimators):
    args = make_args(use_tis=True, tis_clip=2.0, tis_clip_low=0.0)
    _, metrics, _ = run(args, one_sample(rollout_log_probs=ROLLOUT), estimators["grpo"])
    assert metrics["pg_loss"] == pytest.approx((-2.0 - 0.5) / 2, rel=1e-5)  # w clamped to [2, 0.5]
    assert metrics["tis"] == pytest.approx(1.75, rel=1e-5)
    assert metrics["tis_clipfrac"] == pytest.approx(0.5)
    assert metrics["tis_abs"] == pytest.approx(1.25, rel=1e-5)
    assert metrics["ois"] == pytest.approx(1.0)
    assert metrics["train_rollout_logprob_abs_diff"] == pytest.approx((math.log(3.0) + math.log(2.0)) / 2, rel=1e-5)
    # low_var_kl(rollout ‖ train): r = train − rollout = [ln 3, −ln 2] → e^r − 1 − r
    expected_kl = ((3 - 1 - math.log(3.0)) + (0.5 - 1 + math.log(2.0))) / 2
    assert metrics["train_rollout_kl"] == pytest.approx(expected_kl, rel=1e-5)


def test_custom_tis_function_path(make_args, estimators):
    args = make_args(use_tis=True, custom_tis_function_path="miles_core.training.policy_loss:icepop")
    _, metrics, _ = run(args, one_sample(rollout_log_probs=ROLLOUT), estimators["grpo"])
    assert metrics["pg_loss"] == pytest.approx(-0.25, rel=1e-5)  # w = 3 is outside [0, 2]: weight 0


def test_mismatch_metrics_without_reweighting(make_args, estimators):
    _, metrics, _ = run(make_args(get_mismatch_metrics=True), one_sample(rollout_log_probs=ROLLOUT), estimators["grpo"])
    assert metrics["pg_loss"] == pytest.approx(-1.0)
    assert metrics["tis"] == pytest.approx(1.75, rel=1e-5)


def test_tis_without_rollout_log_probs_is_a_clear_error(make_args, estimators):
    with pytest.raises(KeyError, match="rollout_log_probs"):
        run(make_args(use_tis=True), one_sample(), estimators["grpo"])


# --------------------------------------------------------------------------------------------- other terms


def test_opsm_masks_stale_negative_samples(make_args, estimators):
    # sample 0: A < 0 and mean(old − new) = 0.5 > δ → dropped; sample 1 (ratio 1) kept: pg = −1·(−1) = 1
    batch = {"loss_masks": [[1], [1]], "advantages": [t(-1.0), t(-1.0)], "log_probs": [t(-0.5), t(-1.0)]}
    _, metrics, _ = run(make_args(use_opsm=True), batch, estimators["grpo"], new=[t(-1.0), t(-1.0)])
    assert metrics["opsm_clipfrac"] == pytest.approx(0.5)
    assert metrics["pg_loss"] == pytest.approx(0.5)  # (0 + 1)/B with B = 2


def test_opd_reverse_kl_metric(make_args, estimators):
    batch = one_sample(teacher_log_probs=[t(-7.0, -1.5, -1.0)])  # prompt token first: only the last 2 count
    _, metrics, _ = run(make_args(), batch, estimators["on_policy_distillation"])
    assert metrics["opd_reverse_kl"] == pytest.approx((0.5 - 1.0) / 2)


def test_custom_pg_loss_reducer_dr_grpo(make_args, estimators):
    args = make_args(custom_pg_loss_reducer_function_path="miles_core.training.reducers:dr_grpo",
                     rollout_max_response_len=4)
    _, metrics, _ = run(args, one_sample(), estimators["grpo"])
    assert metrics["pg_loss"] == pytest.approx(-0.5)  # (−1 − 1) / 4
    assert metrics["ppo_kl"] == 0.0  # other metrics keep the default reducer


def test_every_metric_has_a_miles_name(make_args, estimators):
    args = make_args(use_tis=True, use_kl_loss=True, kl_loss_coef=0.1, use_opsm=True, entropy_coef=0.01)
    batch = one_sample(rollout_log_probs=ROLLOUT, ref_log_probs=[t(-1.1, -2.1)], teacher_log_probs=[t(-1.0, -2.0)])
    _, metrics, _ = run(args, batch, estimators["on_policy_distillation"], entropy=[t(1.0, 1.0)])
    assert set(metrics) == MILES_METRICS


def test_all_masked_sample_and_empty_response_keep_a_finite_connected_loss(make_args, estimators):
    batch = {"loss_masks": [[0, 0], []], "advantages": [t(5.0, 5.0), t()], "log_probs": [t(-1.0, float("nan")), t()]}
    loss, metrics, new = run(make_args(), batch, estimators["grpo"], new=[t(-1.0, -2.0), t()])
    assert loss.item() == 0.0 and all(math.isfinite(v) for v in metrics.values())
    loss.backward()
    assert new[0].grad.tolist() == [0.0, 0.0]


def test_missing_inputs_are_named(make_args, estimators):
    with pytest.raises(KeyError, match="advantages"):
        run(make_args(), {"loss_masks": [[1]], "log_probs": [t(-1.0)]}, estimators["grpo"])
    with pytest.raises(KeyError, match="ref_log_probs"):
        run(make_args(use_kl_loss=True), one_sample(), estimators["grpo"])
    with pytest.raises(ValueError, match="entropy"):
        run(make_args(entropy_coef=0.1), one_sample(), estimators["grpo"])
    with pytest.raises(ValueError, match="unknown --loss-type"):
        run(make_args(loss_type="dpo"), one_sample(), estimators["grpo"])


# --------------------------------------------------------------------------------------------- scaling


def _random_batch(seed: int, n: int = 4):
    gen = torch.Generator().manual_seed(seed)
    lengths = [3, 5, 1, 4][:n]
    masks = [(torch.rand(k, generator=gen) > 0.25).float() for k in lengths]
    masks[0][0] = 1.0
    return {
        "loss_masks": masks,
        "advantages": [torch.randn(k, generator=gen) for k in lengths],
        "log_probs": [-torch.rand(k, generator=gen) * 2 for k in lengths],
    }, [-torch.rand(k, generator=gen) * 2 for k in lengths]


def _direct_objective(batch, new, per_token: bool, eps=0.2):
    """The step objective written out: PPO clip per token, then (1/B)·Σ token-means or a global token mean."""
    per_sample, token_sum, token_count = [], 0.0, 0.0
    for a, old, lp, m in zip(batch["advantages"], batch["log_probs"], new, batch["loss_masks"], strict=True):
        ratio = torch.exp(lp - old)
        pg = torch.maximum(-ratio * a, -ratio.clamp(1 - eps, 1 + eps) * a)
        per_sample.append((pg * m).sum() / m.sum().clamp(min=1))
        token_sum = token_sum + (pg * m).sum()
        token_count += float(m.sum())
    return token_sum / token_count if per_token else sum(per_sample) / len(per_sample)


def _split(batch, new, indices):
    return {k: [v[i] for i in indices] for k, v in batch.items()}, [new[i] for i in indices]


@pytest.mark.parametrize("per_token", [False, True])
def test_micro_batches_and_dp_ranks_recover_the_step_objective(make_args, estimators, per_token):
    args = make_args(calculate_per_token_loss=per_token)
    batch, new_values = _random_batch(seed=3)
    new = [x.clone().requires_grad_() for x in new_values]
    expected = _direct_objective(batch, [x.detach() for x in new], per_token)
    # two DP ranks: rank 0 runs micro-batches {0}, {1}; rank 1 runs {2, 3}. Backend: Σ micro-batches, mean over ranks.
    scale = {"global_batch_size": 4, "global_num_tokens": count_loss_tokens(batch["loss_masks"]), "dp_size": 2}
    rank_losses, rank_metrics = [], []
    for micro_batches in ([[0], [1]], [[2, 3]]):
        total, metric_total = 0.0, 0.0
        for indices in micro_batches:
            mb, mb_new = _split(batch, new, indices)
            loss, metrics = micro_batch_loss(args, mb, mb_new, None, estimators["grpo"], **scale)
            total = total + loss
            metric_total += float(metrics["pg_loss"])
        rank_losses.append(total)
        rank_metrics.append(metric_total)
    step_loss = sum(rank_losses) / 2
    assert step_loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert sum(rank_metrics) / 2 == pytest.approx(float(expected), rel=1e-5)
    # gradients equal those of the objective written out
    step_loss.backward()
    reference = [x.detach().clone().requires_grad_() for x in new_values]
    _direct_objective(batch, reference, per_token).backward()
    for got, want in zip(new, reference, strict=True):
        assert got.grad.tolist() == pytest.approx(want.grad.tolist(), abs=1e-6)


def test_loss_scale_and_token_count(make_args):
    assert loss_scale(make_args(), global_batch_size=8, dp_size=2) == 0.25
    assert loss_scale(make_args(calculate_per_token_loss=True), global_batch_size=8, global_num_tokens=40, dp_size=4) == 0.1
    assert count_loss_tokens([[1, 0, 1], torch.tensor([1.0, 1.0])]) == 4
    with pytest.raises(ValueError, match="global_num_tokens"):
        loss_scale(make_args(calculate_per_token_loss=True), global_batch_size=8)


# --------------------------------------------------------------------------------------------- loss types


def test_sft_loss_is_negative_mean_log_likelihood(make_args, estimators):
    batch = {"loss_masks": [[1, 1], [1]]}
    loss, metrics, new = run(make_args(loss_type="sft_loss"), batch, estimators["grpo"],
                             new=[t(-1.0, -3.0), t(-2.0)], global_batch_size=2)
    assert loss.item() == pytest.approx(2.0)  # (2 + 2) / B
    assert set(metrics) == {"loss"}
    loss.backward()
    assert new[0].grad.tolist() == pytest.approx([-0.25, -0.25])


CUSTOM_LOSS_MODULE = '''
import torch

def loss(args, batch, logits, sum_of_sample_mean):
    log_probs = torch.cat(batch["current_log_probs"])
    value = -sum_of_sample_mean(log_probs) + 0 * logits.sum()
    return value, {"nll": value.detach()}
'''


def test_custom_loss_function_path(make_args, estimators, tmp_path, monkeypatch):
    (tmp_path / "my_custom_loss_for_tests.py").write_text(CUSTOM_LOSS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = make_args(loss_type="custom_loss", custom_loss_function_path="my_custom_loss_for_tests:loss")
    batch = {"loss_masks": [[1, 1]]}
    new = [t(-1.0, -3.0).requires_grad_()]
    loss, metrics = micro_batch_loss(args, batch, new, None, estimators["grpo"], global_batch_size=2,
                                     logits=torch.zeros(1, 2, 5))
    assert loss.item() == pytest.approx(1.0)  # 2.0 / B
    assert float(metrics["nll"]) == pytest.approx(1.0) and float(metrics["loss"]) == pytest.approx(1.0)


REJECTING_TIS_MODULE = '''
import torch

def reject_second_token(*, args, pg_loss, train_log_probs, rollout_log_probs, loss_masks, **kwargs):
    masks = [m.clone() for m in loss_masks]
    masks[0][1] = 0.0
    return pg_loss * 3.0, masks, {"my_rejected": torch.tensor([0.0, 1.0])}
'''


def test_rejecting_custom_tis_changes_only_the_pg_loss_denominator(make_args, estimators, tmp_path, monkeypatch):
    (tmp_path / "my_rejecting_tis_for_tests.py").write_text(REJECTING_TIS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = make_args(use_tis=True, custom_tis_function_path="my_rejecting_tis_for_tests:reject_second_token")
    batch = one_sample(rollout_log_probs=[t(-1.0, -2.0)], advantages=[t(1.0, 2.0)])
    _, metrics, _ = run(args, batch, estimators["grpo"])
    assert metrics["pg_loss"] == pytest.approx(-3.0)  # token 0 only: 3·(−1) over one remaining token
    assert metrics["my_rejected"] == pytest.approx(0.5)  # metrics keep the pre-rejection masks
