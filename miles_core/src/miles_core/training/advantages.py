"""Rewards → advantages and returns (anatomy §7.1, §7.3): one function per formula, then one
``compute_advantages(args, batch)`` per built-in estimator (registered by ``estimators_plugin``).

Per-sample tensors are 1-D over the sample's response tokens. The estimators read ``rewards``
(already normalised by the rollout side with :func:`normalize_group_rewards`, per the estimator's
``reward_normalization``), ``loss_masks``, and what each needs: old ``log_probs`` (or
``rollout_log_probs`` with ``--use-rollout-logprobs``), ``ref_log_probs``, ``values``,
``teacher_log_probs``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import torch

from miles_core.training.kl import compute_approx_kl

__all__ = [
    "REWARD_NORMALIZATION_MODES",
    "normalize_group_rewards",
    "reverse_discounted_cumsum",
    "gae_over_masked_tokens",
    "reinforce_plus_plus_returns",
    "reinforce_plus_plus_baseline_advantages",
    "opd_advantages",
    "masked_whiten",
    "grpo",
    "gspo",
    "ppo",
    "reinforce_plus_plus",
    "reinforce_plus_plus_baseline",
    "on_policy_distillation",
]

REWARD_NORMALIZATION_MODES: tuple[str, ...] = ("group_mean_std", "group_mean", "none")
GROUP_STD_EPS = 1e-6
WHITEN_EPS = 1e-8
SCAN_CHUNK = 128

Batch = dict[str, Any]


# ---------------------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------------------


def normalize_group_rewards(
    raw_rewards: Sequence[float], group_indices: Sequence[int], mode: str, std_normalization: bool = True
) -> list[float]:
    """Group-relative rewards: each sample's reward minus its group's mean, optionally over the std.

    GRPO (Shao et al. 2024, "DeepSeekMath", eq. for Â outcome supervision) as Miles does it (anatomy
    §7.1): ``r̃ = r − mean(group)``; for ``group_mean_std`` with ``std_normalization``, a group of more
    than one sample and ``std > 0``: ``r̃ /= std + 1e-6`` with the unbiased (N−1) std.

    - ``mode``: ``group_mean_std`` (GRPO/GSPO), ``group_mean`` (REINFORCE++ baseline, Dr. GRPO) or
      ``none`` (rewards unchanged).
    - A group of one sample gets 0 (no baseline information; verl instead keeps the raw reward).
    - A group whose rewards are all equal gets 0 (the ``std > 0`` guard avoids dividing 0 by 1e-6).
    - Groups are formed by equal ``group_indices`` values, wherever the samples sit in the list.
    """
    if mode not in REWARD_NORMALIZATION_MODES:
        raise ValueError(f"unknown reward normalization {mode!r}; one of {', '.join(REWARD_NORMALIZATION_MODES)}")
    if len(raw_rewards) != len(group_indices):
        raise ValueError(f"{len(raw_rewards)} rewards but {len(group_indices)} group indices")
    rewards = [float(r) for r in raw_rewards]
    if mode == "none":
        return rewards
    members: dict[int, list[int]] = {}
    for position, group in enumerate(group_indices):
        if group is None:
            raise ValueError(f"sample {position} has no group index; group normalisation needs one per sample")
        members.setdefault(group, []).append(position)
    normalized = list(rewards)
    for positions in members.values():
        values = [rewards[p] for p in positions]
        mean = math.fsum(values) / len(values)
        centered = [v - mean for v in values]
        if mode == "group_mean_std" and std_normalization and len(values) > 1:
            std = math.sqrt(math.fsum(c * c for c in centered) / (len(values) - 1))
            if std > 0:
                centered = [c / (std + GROUP_STD_EPS) for c in centered]
        for p, c in zip(positions, centered, strict=True):
            normalized[p] = c
    return normalized


def reverse_discounted_cumsum(x: torch.Tensor, discount: float, chunk: int = SCAN_CHUNK) -> torch.Tensor:
    """``y_t = x_t + discount · y_{t+1}`` along the last axis of a ``[B, T]`` tensor (``y_T = 0``).

    The recurrence of discounted returns and of GAE. Computed as a chunked scan (Miles ``chunked_gae``):
    inside each chunk of ``chunk`` steps one matmul with the Toeplitz matrix ``discount^(k−t)``, then a
    carry ``discount^(chunk−t) · y_{chunk start of the next}`` from the last chunk backwards, so a long
    response costs T/chunk small Python steps, not T.
    """
    if x.dim() != 2:
        raise ValueError(f"expected a [batch, time] tensor, got shape {tuple(x.shape)}")
    batch, steps = x.shape
    if steps == 0:
        return x.clone()
    pad = (-steps) % chunk
    chunks = torch.nn.functional.pad(x, (0, pad)).view(batch, -1, chunk)
    index = torch.arange(chunk, device=x.device, dtype=x.dtype)
    exponent = index[None, :] - index[:, None]  # [t, k] = k − t
    powers = torch.full_like(exponent, float(discount)).pow(exponent.clamp(min=0))
    toeplitz = torch.where(exponent >= 0, powers, torch.zeros_like(powers))
    local = chunks @ toeplitz.T  # y_t = Σ_{k ≥ t} discount^(k−t) x_k within the chunk
    carry_weight = torch.full_like(index, float(discount)).pow(chunk - index)
    out = torch.empty_like(local)
    carry = torch.zeros(batch, dtype=x.dtype, device=x.device)
    for j in range(local.shape[1] - 1, -1, -1):
        out[:, j] = local[:, j] + carry[:, None] * carry_weight
        carry = out[:, j, 0]
    return out.reshape(batch, -1)[:, :steps]


def gae_over_masked_tokens(
    token_rewards: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    gamma: float,
    lambd: float,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Generalised advantage estimation over the trained tokens only (Schulman et al. 2016, "High-
    Dimensional Continuous Control Using GAE", eq. 16; Miles's masked variant, anatomy §7.3).

    GAE runs on each sample's subsequence of ``loss_mask == 1`` tokens: tokens the policy did not
    produce (tool output in a multi-turn response) carry no reward and no value delta, and the carry
    crosses them undecayed. On that subsequence ``δ_k = r_k + γ·V_{k+1} − V_k`` (``V`` after the last
    trained token is 0: truncated and terminated are treated alike), ``A_k = δ_k + γλ·A_{k+1}``,
    ``R_k = A_k + V_k``. Masked positions get 0 in both.
    """
    lengths = [int(m.numel()) for m in loss_masks]
    positions = [torch.nonzero(m > 0, as_tuple=False).flatten() for m in loss_masks]
    width = max((len(p) for p in positions), default=0)
    device = loss_masks[0].device if loss_masks else torch.device("cpu")
    rewards = torch.zeros(len(lengths), width, device=device)
    vals = torch.zeros(len(lengths), width + 1, device=device)  # one trailing 0 = V after the last token
    for i, p in enumerate(positions):
        rewards[i, : len(p)] = token_rewards[i].float().to(device)[p]
        vals[i, : len(p)] = values[i].float().to(device)[p]
    deltas = rewards + gamma * vals[:, 1:] - vals[:, :-1]  # 0 past each sample's last trained token
    compact_advantages = reverse_discounted_cumsum(deltas, gamma * lambd)
    compact_returns = compact_advantages + vals[:, :-1]
    advantages, returns = [], []
    for i, p in enumerate(positions):
        a = torch.zeros(lengths[i], device=device)
        r = torch.zeros(lengths[i], device=device)
        a[p] = compact_advantages[i, : len(p)]
        r[p] = compact_returns[i, : len(p)]
        advantages.append(a)
        returns.append(r)
    return advantages, returns


def _last_trained_index(mask: torch.Tensor) -> int | None:
    trained = torch.nonzero(mask > 0, as_tuple=False)
    return int(trained[-1]) if len(trained) else None


def _terminal_token_rewards(
    rewards: Sequence[float], kl: Sequence[torch.Tensor], loss_masks: Sequence[torch.Tensor], kl_coef: float
) -> list[torch.Tensor]:
    """``ρ_t = −kl_coef·kl_t`` on trained tokens, plus the sample reward on its last trained token."""
    token_rewards = []
    for reward, k, m in zip(rewards, kl, loss_masks, strict=True):
        rho = -kl_coef * k.float() * (m > 0).float()
        last = _last_trained_index(m)
        if last is not None:
            rho[last] += float(reward)
        token_rewards.append(rho)
    return token_rewards


def reinforce_plus_plus_returns(
    rewards: Sequence[float],
    kl: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    kl_coef: float,
    gamma: float,
) -> list[torch.Tensor]:
    """REINFORCE++ returns (Hu 2025, "REINFORCE++", eq. 3–4; Miles ``get_reinforce_plus_plus_returns``):
    token rewards ``ρ_t = −kl_coef·kl_t`` with the sample reward added at the last trained token, then
    discounted returns over all response positions ``G_t = ρ_t + γ·G_{t+1}``. ``A = R = G``.

    A sample with no trained token gets zeros (Miles asserts instead; the loss mask ignores it anyway).
    """
    token_rewards = _terminal_token_rewards(rewards, kl, loss_masks, kl_coef)
    returns = []
    for rho in token_rewards:
        returns.append(reverse_discounted_cumsum(rho[None, :], gamma)[0] if rho.numel() else rho.clone())
    return returns


def reinforce_plus_plus_baseline_advantages(
    rewards: Sequence[float], kl: Sequence[torch.Tensor], loss_masks: Sequence[torch.Tensor], kl_coef: float
) -> list[torch.Tensor]:
    """REINFORCE++ with a group baseline (Hu 2025, §3.2; Miles
    ``get_reinforce_plus_plus_baseline_advantages``): ``A_t = r̃ − kl_coef·kl_t`` where ``r̃`` is the
    reward minus its group mean (done on the rollout side, ``reward_normalization="group_mean"``)."""
    return [float(r) - kl_coef * k.float() * (m > 0).float() for r, k, m in zip(rewards, kl, loss_masks, strict=True)]


def opd_advantages(
    base_advantages: Sequence[torch.Tensor],
    old_log_probs: Sequence[torch.Tensor],
    teacher_log_probs: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    opd_kl_coef: float,
) -> list[torch.Tensor]:
    """On-policy distillation (Agarwal et al. 2024, "On-Policy Distillation of Language Models"; Miles
    OPD, anatomy §7.3): ``A_t ← A_t − opd_kl_coef·(log π_student,old(y_t) − log π_teacher(y_t))``, the
    per-token reverse-KL estimate as a penalty, so tokens the teacher finds unlikely are pushed down.

    Teacher log-probs may cover more than the response (prompt + response); the last
    ``len(response)`` entries are used, as slime does.
    """
    result = []
    for a, old, teacher, m in zip(base_advantages, old_log_probs, teacher_log_probs, loss_masks, strict=True):
        n = a.numel()
        teacher = torch.as_tensor(teacher, dtype=torch.float32, device=a.device)
        if teacher.numel() < n:
            raise ValueError(f"teacher log-probs cover {teacher.numel()} tokens but the response has {n}")
        reverse_kl = old.float().to(a.device) - teacher[teacher.numel() - n:]
        result.append(a - opd_kl_coef * torch.where(m > 0, reverse_kl, torch.zeros_like(reverse_kl)))
    return result


def masked_whiten(
    advantages: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    *,
    process_group: Any = None,
    eps: float = WHITEN_EPS,
) -> list[torch.Tensor]:
    """``--normalize-advantages``: whiten over every trained token of the data-parallel group
    (Miles ``distributed_masked_whiten``): ``μ = Σa·m / Σm``,
    ``var = (Σa²·m / Σm − μ²) · N/(N−1)`` (unbiased, N = Σm), ``a ← (a − μ) / sqrt(var + 1e-8)``.

    The three sums are all-reduced over ``process_group`` when ``torch.distributed`` is initialised,
    so every rank gets the same μ and var. Untrained positions are set to 0.
    """
    if not advantages:
        return []
    flat = torch.cat([a.float() for a in advantages])
    mask = torch.cat([m.float().to(flat.device) for m in loss_masks])
    masked = torch.where(mask > 0, flat, torch.zeros_like(flat))
    stats = torch.stack([masked.sum(), (masked * masked).sum(), mask.sum()]).double()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(stats, group=process_group)
    total, total_sq, count = (float(s) for s in stats)
    if count == 0:
        return [torch.zeros_like(a, dtype=torch.float32) for a in advantages]
    mean = total / count
    var = max(total_sq / count - mean * mean, 0.0)
    if count > 1:
        var *= count / (count - 1)
    whitened = torch.where(mask > 0, (flat - mean) / math.sqrt(var + eps), torch.zeros_like(flat))
    return list(torch.split(whitened, [a.numel() for a in advantages]))


# ---------------------------------------------------------------------------------------------------
# Batch access
# ---------------------------------------------------------------------------------------------------


def _masks(batch: Batch) -> list[torch.Tensor]:
    device = None
    for key in ("log_probs", "rollout_log_probs", "values"):
        tensors = batch.get(key)
        if tensors and isinstance(tensors[0], torch.Tensor):
            device = tensors[0].device
            break
    return [torch.as_tensor(m, dtype=torch.float32, device=device) for m in batch["loss_masks"]]


def _get(batch: Batch, key: str, why: str) -> Any:
    value = batch.get(key)
    if value is None:
        raise KeyError(f"batch[{key!r}] is missing: {why}")
    return value


def _old_log_probs(args: argparse.Namespace, batch: Batch, why: str) -> list[torch.Tensor]:
    key = "rollout_log_probs" if getattr(args, "use_rollout_logprobs", False) else "log_probs"
    return [torch.as_tensor(x, dtype=torch.float32) for x in _get(batch, key, why)]


def _reward_kl(args: argparse.Namespace, batch: Batch, masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Reward-level KL per token (``--kl-coef``, with ``--kl-loss-type``'s estimator); zeros when 0."""
    kl_coef = getattr(args, "kl_coef", 0.0)
    if not kl_coef:
        return [torch.zeros_like(m) for m in masks]
    old = _old_log_probs(args, batch, "--kl-coef needs the old policy's log-probs")
    ref = _get(batch, "ref_log_probs", "--kl-coef needs reference log-probs (give --ref-load)")
    kl_type = getattr(args, "kl_loss_type", "k1")
    return [compute_approx_kl(o.to(m.device), torch.as_tensor(r, device=m.device), kl_type) for o, r, m in
            zip(old, ref, masks, strict=True)]


def _broadcast_rewards(batch: Batch, masks: list[torch.Tensor]) -> list[torch.Tensor]:
    rewards = _get(batch, "rewards", "the rollout must give one reward per sample")
    return [torch.full_like(m, float(r)) for r, m in zip(rewards, masks, strict=True)]


# ---------------------------------------------------------------------------------------------------
# Estimators: compute_advantages(args, batch) -> None
# ---------------------------------------------------------------------------------------------------


def grpo(args: argparse.Namespace, batch: Batch) -> None:
    """GRPO (Shao et al. 2024): every response token gets the group-normalised reward, ``A = R = r̃``.
    ``--kl-coef`` is ignored, as in Miles (use ``--use-kl-loss``)."""
    masks = _masks(batch)
    batch["advantages"] = _broadcast_rewards(batch, masks)
    batch["returns"] = [a.clone() for a in batch["advantages"]]


#: GSPO's advantages are GRPO's; the difference is the sequence-level ratio in the policy loss.
gspo = grpo


def ppo(args: argparse.Namespace, batch: Batch) -> None:
    """PPO with a critic: the reward at the last trained token (minus ``kl_coef``·KL per token), GAE over
    the trained tokens with ``--gamma`` and ``--lambd`` (:func:`gae_over_masked_tokens`)."""
    masks = _masks(batch)
    values = [torch.as_tensor(v, dtype=torch.float32) for v in _get(batch, "values", "ppo needs the critic's values")]
    token_rewards = _terminal_token_rewards(batch["rewards"], _reward_kl(args, batch, masks), masks,
                                            getattr(args, "kl_coef", 0.0))
    batch["advantages"], batch["returns"] = gae_over_masked_tokens(
        token_rewards, values, masks, getattr(args, "gamma", 1.0), getattr(args, "lambd", 1.0)
    )


def reinforce_plus_plus(args: argparse.Namespace, batch: Batch) -> None:
    """REINFORCE++ (:func:`reinforce_plus_plus_returns`); ``A = R``. Needs ``--normalize-advantages``."""
    masks = _masks(batch)
    returns = reinforce_plus_plus_returns(
        _get(batch, "rewards", "one reward per sample"), _reward_kl(args, batch, masks), masks,
        getattr(args, "kl_coef", 0.0), getattr(args, "gamma", 1.0),
    )
    batch["advantages"] = returns
    batch["returns"] = [r.clone() for r in returns]


def reinforce_plus_plus_baseline(args: argparse.Namespace, batch: Batch) -> None:
    """REINFORCE++ with group-mean baseline (:func:`reinforce_plus_plus_baseline_advantages`); ``R = A``."""
    masks = _masks(batch)
    advantages = reinforce_plus_plus_baseline_advantages(
        _get(batch, "rewards", "one reward per sample"), _reward_kl(args, batch, masks), masks,
        getattr(args, "kl_coef", 0.0),
    )
    batch["advantages"] = advantages
    batch["returns"] = [a.clone() for a in advantages]


def on_policy_distillation(args: argparse.Namespace, batch: Batch) -> None:
    """GRPO's group-normalised reward plus the OPD penalty (:func:`opd_advantages`, ``--opd-kl-coef``).

    With one sample per prompt (or rewards all equal) the reward term is 0 and this is pure
    distillation: ``A_t = opd_kl_coef · (log π_teacher − log π_student)``; with a reward model and
    groups it is Miles's ``grpo --use-opd``. ``R = A``.
    """
    masks = _masks(batch)
    old = _old_log_probs(args, batch, "on-policy distillation needs the student's log-probs")
    teacher = _get(batch, "teacher_log_probs", "on-policy distillation needs teacher log-probs (--opd-teacher-url)")
    advantages = opd_advantages(_broadcast_rewards(batch, masks), old, teacher, masks,
                                getattr(args, "opd_kl_coef", 1.0))
    batch["advantages"] = advantages
    batch["returns"] = [a.clone() for a in advantages]
