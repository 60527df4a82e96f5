"""The PPO critic's clipped value loss (one formula)."""

from __future__ import annotations

import torch

__all__ = ["clipped_value_loss"]


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, value_clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token clipped value loss and clip indicator (Miles ``value_loss_function``; the value
    clipping of OpenAI baselines' PPO2): ``v_clip = v_old + clamp(v − v_old, ±value_clip)``,
    ``loss = max((v_clip − R)², (v − R)²)`` (no ½ factor, as Miles), ``clipfrac = 1[|v − v_old| > clip]``.
    Clipping keeps one update from moving the value estimate far from the one GAE used."""
    values, old_values, returns = values.float(), old_values.float(), returns.float()
    clipped = old_values + torch.clamp(values - old_values, -value_clip, value_clip)
    loss = torch.maximum((clipped - returns).pow(2), (values - returns).pow(2))
    clipfrac = ((values - old_values).abs() > value_clip).float()
    return loss, clipfrac
