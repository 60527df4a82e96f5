"""KL estimators between two policies from the log-probs of sampled tokens (one function).

Used twice by the trainer: reward-level KL (``--kl-coef``, inside the REINFORCE++/PPO advantages) and
the KL loss (``--use-kl-loss --kl-loss-coef --kl-loss-type``), plus the ``train_rollout_kl`` metric.
"""

from __future__ import annotations

import torch

__all__ = ["KL_TYPES", "compute_approx_kl"]

#: The ``--kl-loss-type`` choices (Miles: ``k1`` is the default).
KL_TYPES: tuple[str, ...] = ("k1", "k2", "k3", "low_var_kl")


def compute_approx_kl(
    log_probs: torch.Tensor,
    log_probs_base: torch.Tensor,
    kl_type: str,
    importance_ratio: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_base) from tokens sampled from π.

    Schulman, "Approximating KL divergence" (2020): with ``log_ratio = log π − log π_base``,
    ``k1 = log_ratio``, ``k2 = log_ratio² / 2``, ``k3 = exp(r) − 1 − r`` with ``r = −log_ratio``
    (unbiased, always ≥ 0). ``low_var_kl`` is k3 with Miles's clamps (anatomy §7.2): ``r`` clamped to
    [−20, 20] (NaN → 0, ±inf → ±20) and the result clamped to [−10, 10]; the other types are not
    clamped (Miles/slime; verl and OpenRLHF clamp more, see tests for the parity cases).

    ``importance_ratio`` (``--use-unbiased-kl``, DeepSeek-V3.2 §2.1) multiplies the estimate by
    π_θ/π_old so the KL is unbiased when tokens came from the old policy.
    """
    log_ratio = log_probs.float() - log_probs_base.float()
    if kl_type == "k1":
        kl = log_ratio
    elif kl_type == "k2":
        kl = log_ratio.pow(2) / 2.0
    elif kl_type == "k3":
        r = -log_ratio
        kl = torch.exp(r) - 1.0 - r
    elif kl_type == "low_var_kl":
        r = torch.nan_to_num(-log_ratio, nan=0.0, posinf=20.0, neginf=-20.0).clamp(-20.0, 20.0)
        kl = (torch.exp(r) - 1.0 - r).clamp(-10.0, 10.0)
    else:
        raise ValueError(f"unknown KL type {kl_type!r}; one of {', '.join(KL_TYPES)}")
    if importance_ratio is not None:
        kl = importance_ratio.float() * kl
    return kl
