"""The clipped policy-gradient surrogate and its corrections (anatomy §7.4), one formula per function.

Every function works on 1-D tensors concatenated over a micro-batch's response tokens (sample after
sample, ``response_lengths`` long each), the layout Miles's custom TIS and reducer hooks expect.
``miles_core.training.loss.policy_loss`` puts them together.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "zero_where_masked",
    "compute_ppo_kl",
    "ppo_clip_loss",
    "opsm_mask",
    "vanilla_tis",
    "icepop",
    "ess_ratio_per_token",
]

#: Log-ratios are clamped to ±20 before ``exp`` (Miles/verl), so exp stays below 5e8 and finite.
LOG_RATIO_CLAMP = 20.0


def zero_where_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` where ``mask`` is set, else 0, also turning masked NaN/inf into 0 (Miles zeroes ``ppo_kl``
    and advantages outside the loss mask so that padding can never leak into a sum)."""
    return torch.where(mask.to(x.device) > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _per_sample_masked_mean(x: torch.Tensor, mask: torch.Tensor, response_lengths: Sequence[int]) -> torch.Tensor:
    """Each sample's mean of ``x`` over its trained tokens, broadcast back to its tokens."""
    lengths = torch.tensor([int(n) for n in response_lengths], dtype=torch.long, device=x.device)
    sample_of_token = torch.repeat_interleave(torch.arange(len(response_lengths), device=x.device), lengths)
    masked = zero_where_masked(x, mask)
    sums = torch.zeros(len(response_lengths), dtype=x.dtype, device=x.device).index_add(0, sample_of_token, masked)
    counts = torch.zeros(len(response_lengths), dtype=x.dtype, device=x.device).index_add(
        0, sample_of_token, (mask.to(x.device) > 0).to(x.dtype)
    )
    return (sums / counts.clamp(min=1.0))[sample_of_token]


def compute_ppo_kl(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    loss_mask: torch.Tensor,
    response_lengths: Sequence[int],
    *,
    sequence_level: bool = False,
) -> torch.Tensor:
    """``ppo_kl = log π_old − log π_θ`` per token, 0 outside the mask (Miles ``policy_loss_function``).

    GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization", eq. 7): the importance ratio is
    per sequence, ``s_i = exp(mean_t (log π_θ − log π_old))``, so ``ppo_kl`` becomes each sequence's
    masked mean ``Σ_t m_t(old − new) / max(Σ_t m_t, 1)`` broadcast to its tokens (gradient flows
    through the mean to every token of the sequence).
    """
    token_kl = zero_where_masked(old_log_probs.float() - log_probs.float(), loss_mask)
    if not sequence_level:
        return token_kl
    return zero_where_masked(_per_sample_masked_mean(token_kl, loss_mask, response_lengths), loss_mask)


def ppo_clip_loss(
    ppo_kl: torch.Tensor,
    advantages: torch.Tensor,
    eps_clip: float,
    eps_clip_high: float,
    eps_clip_c: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token, and whether the clip was active.

    Schulman et al. 2017, "Proximal Policy Optimization", eq. 7, written as a loss (Miles
    ``compute_policy_loss``): ``ratio = exp(clamp(−ppo_kl, −20, 20))``, ``L1 = −ratio·A``,
    ``L2 = −clamp(ratio, 1−eps_clip, 1+eps_clip_high)·A``, ``pg = max(L1, L2)``,
    ``clipfrac = 1[L2 > L1]``. Asymmetric ``eps_clip_high`` is DAPO's clip-higher (Yu et al. 2025, eq. 10).
    Dual clip (Ye et al. 2020, "Mastering Complex Control in MOBA Games", eq. 5): where ``A < 0``,
    ``pg = min(−c·A, max(L1, L2))``, bounding the loss of a very unlikely token.
    """
    ratio = torch.exp(torch.clamp(-ppo_kl, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    unclipped = -ratio * advantages
    clipped = -torch.clamp(ratio, 1.0 - eps_clip, 1.0 + eps_clip_high) * advantages
    pg = torch.maximum(unclipped, clipped)
    clipfrac = (clipped > unclipped).float()
    if eps_clip_c is not None:
        if eps_clip_c <= 1.0:
            raise ValueError(f"--eps-clip-c must be > 1.0 for dual clip, got {eps_clip_c}")
        pg = torch.where(advantages < 0, torch.minimum(-eps_clip_c * advantages, pg), pg)
    return pg, clipfrac


def opsm_mask(
    ppo_kl: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    response_lengths: Sequence[int],
    delta: float,
) -> torch.Tensor:
    """Off-policy sequence masking (``--use-opsm``, DeepSeek-V3.2 §3.1): keep 0 on the tokens of a
    sequence whose advantage is negative and whose mean ``old − new`` log-ratio exceeds ``delta``,
    1 elsewhere. Such sequences are both bad and stale; learning from them mostly adds noise."""
    seq_kl = _per_sample_masked_mean(ppo_kl.detach(), loss_mask, response_lengths)
    drop = (advantages < 0) & (seq_kl > delta)
    return (~drop).float()


def _train_rollout_ratio(train_log_probs: Sequence[torch.Tensor], rollout_log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    train = torch.cat([t.float() for t in train_log_probs])
    rollout = torch.cat([r.float().to(train.device) for r in rollout_log_probs])
    # Clamped like the PPO ratio (a deliberate Miles deviation) so a wild rollout token keeps metrics finite.
    return torch.exp(torch.clamp(train - rollout, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))


def vanilla_tis(
    *,
    args: argparse.Namespace,
    pg_loss: torch.Tensor,
    train_log_probs: Sequence[torch.Tensor],
    rollout_log_probs: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    **kwargs: Any,
) -> tuple[torch.Tensor, Sequence[torch.Tensor], dict[str, torch.Tensor]]:
    """Truncated importance sampling (``--use-tis``; Yao et al. 2025, "Your Efficient RL Framework
    Secretly Brings You Off-Policy RL Training"): ``w = exp(log π_old,train − log π_rollout)`` corrects
    for the rollout engine sampling from a slightly different distribution than the trainer scores;
    ``pg ← pg · clamp(w, --tis-clip-low, --tis-clip)``.

    Miles's ``--custom-tis-function-path`` contract; per-token metrics ``tis`` (w before clamping),
    ``tis_clipfrac`` (1 where the clamp changed w), ``tis_abs`` (``|w − 1|``). Masks are unchanged.
    """
    low, high = getattr(args, "tis_clip_low", 0.0), getattr(args, "tis_clip", 2.0)
    weights = _train_rollout_ratio(train_log_probs, rollout_log_probs).to(pg_loss.device)
    clamped = weights.clamp(min=low, max=high)
    metrics = {"tis": weights, "tis_clipfrac": (clamped != weights).float(), "tis_abs": (weights - 1.0).abs()}
    return pg_loss * clamped, loss_masks, metrics


def icepop(
    *,
    args: argparse.Namespace,
    pg_loss: torch.Tensor,
    train_log_probs: Sequence[torch.Tensor],
    rollout_log_probs: Sequence[torch.Tensor],
    loss_masks: Sequence[torch.Tensor],
    **kwargs: Any,
) -> tuple[torch.Tensor, Sequence[torch.Tensor], dict[str, torch.Tensor]]:
    """IcePop (Ling team, "Every Step Evolves", 2025; Miles ``icepop_function``): like :func:`vanilla_tis`
    but a token whose ``w`` falls outside ``[--tis-clip-low, --tis-clip]`` gets weight 0 instead of the
    bound. Select with ``--custom-tis-function-path miles_core.training.policy_loss:icepop``."""
    low, high = getattr(args, "tis_clip_low", 0.0), getattr(args, "tis_clip", 2.0)
    weights = _train_rollout_ratio(train_log_probs, rollout_log_probs).to(pg_loss.device)
    kept = torch.where((weights >= low) & (weights <= high), weights, torch.zeros_like(weights))
    metrics = {"tis": weights, "tis_clipfrac": (kept != weights).float(), "tis_abs": (weights - 1.0).abs()}
    return pg_loss * kept, loss_masks, metrics


def ess_ratio_per_token(ppo_kl: torch.Tensor, loss_mask: torch.Tensor, response_lengths: Sequence[int]) -> torch.Tensor:
    """Each sample's normalised effective sample size, broadcast to its tokens (per-sample reduction
    then gives the per-sample value): ``ESS_i / n_i = (Σ_t w_t)² / (n_i · Σ_t w_t²)`` with
    ``w = exp(−ppo_kl)`` over trained tokens (Kong 1992; Miles metric ``ess_ratio``, 1.0 = on-policy)."""
    w = zero_where_masked(torch.exp(torch.clamp(-ppo_kl.float(), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)), loss_mask)
    mean_w = _per_sample_masked_mean(w, loss_mask, response_lengths)
    mean_w2 = _per_sample_masked_mean(w * w, loss_mask, response_lengths)
    # (Σw)² / (n·Σw²) = mean(w)² / mean(w²)
    return zero_where_masked(mean_w.pow(2) / mean_w2.clamp(min=1e-30), loss_mask)
