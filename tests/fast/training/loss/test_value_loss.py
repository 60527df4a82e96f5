"""The critic's clipped value loss."""

from __future__ import annotations

import pytest
import torch
from miles_core.training.loss import value_loss
from miles_core.training.value_loss import clipped_value_loss

V = torch.tensor([1.0, 0.5, 2.0])
OLD = torch.tensor([0.75, 0.5, 1.0])
RETURNS = torch.tensor([1.5, 0.0, 1.0])


def test_clipped_value_loss_per_token():
    # tok0: v - old = 0.25 > 0.2 → v_clip = 0.95: max(0.55², 0.5²) = 0.3025, clipped
    # tok1: unchanged value: 0.5² = 0.25; tok2: v_clip = 1.2: max(0.2², 1²) = 1.0, clipped
    loss, clipfrac = clipped_value_loss(V, OLD, RETURNS, 0.2)
    assert loss.tolist() == pytest.approx([0.3025, 0.25, 1.0], rel=1e-5)
    assert clipfrac.tolist() == [1.0, 0.0, 1.0]


def test_clipping_stops_the_gradient_when_the_clipped_term_dominates():
    v = V.clone().requires_grad_()
    loss, _ = clipped_value_loss(v, OLD, RETURNS, 0.2)
    loss.sum().backward()
    # tok0: clipped term wins → 0; tok1: 2(v − R) = 1; tok2: unclipped wins → 2(2 − 1) = 2
    assert v.grad.tolist() == pytest.approx([0.0, 1.0, 2.0])


def test_value_loss_api_reduces_and_scales(make_args):
    batch = {"loss_masks": [[1, 1], [1]], "values": [OLD[:2], OLD[2:]], "returns": [RETURNS[:2], RETURNS[2:]]}
    values = [V[:2].clone().requires_grad_(), V[2:].clone().requires_grad_()]
    loss, metrics = value_loss(make_args(), batch, values, global_batch_size=2)
    # per-sample means: (0.3025 + 0.25)/2 + 1.0 = 1.27625, over B = 2
    assert loss.item() == pytest.approx(1.27625 / 2, rel=1e-5)
    assert float(metrics["value_loss"]) == pytest.approx(1.27625 / 2, rel=1e-5)
    assert float(metrics["value_clipfrac"]) == pytest.approx((0.5 + 1.0) / 2)
    loss.backward()
    assert values[1].grad.tolist() == pytest.approx([1.0])  # 2(2 − 1) / B
