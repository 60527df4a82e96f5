"""Reducers: how per-token values of a micro-batch become one number (anatomy §7.5).

Every reducer takes a 1-D tensor concatenated over the micro-batch's response tokens (sample after
sample, ``response_lengths`` long each) and returns a 0-d tensor. The loss API scales the result by
``dp_size / B`` (per-sample) or ``dp_size / N_tokens`` (per-token) afterwards.

The factories here follow Miles's ``--custom-pg-loss-reducer-function-path`` contract,
``f(total_lengths, response_lengths, loss_masks, calculate_per_token_loss) -> Callable[[Tensor], Tensor]``,
so ``--custom-pg-loss-reducer-function-path miles_core.training.reducers:dr_grpo`` works.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import torch

__all__ = ["Reducer", "get_reducer", "sum_of_sample_mean", "dr_grpo"]

Reducer = Callable[[torch.Tensor], torch.Tensor]


def get_reducer(
    response_lengths: Sequence[int],
    loss_masks: Sequence[torch.Tensor],
    calculate_per_token_loss: bool = False,
    denominators: Sequence[float] | None = None,
) -> Reducer:
    """Miles's ``sum_of_sample_mean`` reducer.

    - per-sample (default): ``f(x) = Σ_i Σ_t x_it·m_it / max(D_i, 1)`` with ``D_i = Σ_t m_it`` unless
      ``denominators`` gives it (Miles's ``rollout_mask_sums``: siblings of one trajectory share one
      token-weighted mean);
    - per-token (``--calculate-per-token-loss``): ``f(x) = Σ_i Σ_t x_it·m_it``.

    A sample whose mask is all zero contributes 0 (never a division by zero).
    """
    lengths = [int(n) for n in response_lengths]
    masks = [m.float() for m in loss_masks]
    if len(lengths) != len(masks):
        raise ValueError(f"{len(lengths)} response lengths but {len(masks)} loss masks")
    for i, (n, m) in enumerate(zip(lengths, masks, strict=True)):
        if m.numel() != n:
            raise ValueError(f"sample {i}: loss mask has {m.numel()} tokens but response_length is {n}")
    device = masks[0].device if masks else torch.device("cpu")
    flat_mask = torch.cat(masks) if masks else torch.zeros(0)
    if calculate_per_token_loss:
        weights = flat_mask
    else:
        # Stays on the masks' device: no host sync per sample inside the train step.
        if denominators is None:
            sums = torch.stack([m.sum() for m in masks]) if masks else torch.zeros(0, device=device)
        else:
            sums = torch.as_tensor([float(d) for d in denominators], dtype=torch.float32, device=device)
        repeats = torch.as_tensor(lengths, dtype=torch.long, device=device)
        weights = flat_mask * torch.repeat_interleave(1.0 / sums.clamp(min=1.0), repeats)

    def reduce(x: torch.Tensor) -> torch.Tensor:
        if x.numel() != weights.numel():
            raise ValueError(f"reducer got {x.numel()} values for {weights.numel()} response tokens")
        w = weights.to(device=x.device)
        # where() and not x*w: a masked-out NaN/inf (e.g. padding log-probs) must not poison the sum.
        return torch.where(w != 0, x.float() * w, torch.zeros((), device=x.device)).sum()

    return reduce


def sum_of_sample_mean(
    total_lengths: Sequence[int],
    response_lengths: Sequence[int],
    loss_masks: Sequence[torch.Tensor],
    calculate_per_token_loss: bool = False,
) -> Reducer:
    """The default reducer in Miles's factory form (``total_lengths`` is unused without context parallelism)."""
    return get_reducer(response_lengths, loss_masks, calculate_per_token_loss)


def dr_grpo(
    total_lengths: Sequence[int],
    response_lengths: Sequence[int],
    loss_masks: Sequence[torch.Tensor],
    calculate_per_token_loss: bool = False,
    *,
    args: argparse.Namespace | None = None,
    divisor: float | None = None,
) -> Reducer:
    """Dr. GRPO's constant divisor (Liu et al. 2025, "Understanding R1-Zero-Like Training", §3.1):
    ``f(x) = Σ_i Σ_t x_it·m_it / C`` instead of dividing each sample by its own length, which removes
    the bias towards long wrong answers. With the loss scale ``1/B`` the objective is
    ``(1/B)·Σ_i Σ_t x_it·m_it / C``.

    ``C`` is ``divisor``, else ``--dr-grpo-divisor``, else ``--rollout-max-response-len`` (the paper's
    generation budget). Per-token mode is unchanged (already no per-sample division), as in Miles's
    DrGRPO example. Use with ``--disable-grpo-std-normalization`` for the full Dr. GRPO recipe.
    """
    if calculate_per_token_loss:
        return get_reducer(response_lengths, loss_masks, True)
    if divisor is None and args is not None:
        divisor = getattr(args, "dr_grpo_divisor", None) or getattr(args, "rollout_max_response_len", None)
    if not divisor or divisor <= 0:
        raise ValueError(
            "the dr_grpo reducer needs a positive constant divisor: set --dr-grpo-divisor or "
            "--rollout-max-response-len (the generation budget)"
        )
    per_token = get_reducer(response_lengths, loss_masks, True)
    constant = float(divisor)
    return lambda x: per_token(x) / constant
