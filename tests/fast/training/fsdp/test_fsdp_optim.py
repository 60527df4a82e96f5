"""Optimizer construction and LR schedules on hand-computed values (Megatron's formulas)."""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.training.optim import build_lr_scheduler, build_optimizer, lr_at_step, schedule_length


def _lrs(style, *, steps=12, max_lr=1.0, min_lr=0.1, warmup=2, decay=10):
    param = torch.nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.SGD([param], lr=max_lr)
    sched = build_lr_scheduler(opt, style=style, min_lr=min_lr, warmup_steps=warmup, decay_steps=decay)
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return seen


def test_constant_with_warmup():
    assert _lrs("constant") == pytest.approx([0.0, 0.5] + [1.0] * 10)


def test_linear_decay_to_min_lr():
    # warmup 0, .5, 1 at step 2; then 1 - (s-2)/8 of the (1 - 0.1) range; after step 10: min_lr
    expected = [0.0, 0.5, 1.0] + [0.1 + (1 - (s - 2) / 8) * 0.9 for s in range(3, 11)] + [0.1]
    assert _lrs("linear") == pytest.approx(expected)
    assert _lrs("linear")[6] == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2


def test_cosine_decay_hand_values():
    lrs = _lrs("cosine")
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[6] == pytest.approx(0.1 + 0.5 * (math.cos(math.pi * 0.5) + 1) * 0.9)  # = 0.55
    assert lrs[4] == pytest.approx(0.1 + 0.5 * (math.cos(math.pi * 0.25) + 1) * 0.9)  # 0.868198
    assert lrs[10] == pytest.approx(0.1) and lrs[11] == pytest.approx(0.1)


def test_schedule_state_resumes_the_same_curve():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = build_lr_scheduler(opt, style="cosine", min_lr=0.0, warmup_steps=0, decay_steps=8)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = build_lr_scheduler(opt2, style="cosine", min_lr=0.0, warmup_steps=0, decay_steps=8)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    opt.step()
    sched.step()
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())


def test_lr_at_step_rejects_unknown_style():
    with pytest.raises(ValueError, match="--lr-decay-style"):
        lr_at_step(0, max_lr=1, min_lr=0, warmup_steps=0, decay_steps=1, style="step")


def test_schedule_length():
    assert schedule_length(lr_decay_iters=None, num_rollout=5, num_steps_per_rollout=3, style="cosine") == 15
    assert schedule_length(lr_decay_iters=7, num_rollout=5, num_steps_per_rollout=3, style="cosine") == 7
    with pytest.raises(ValueError, match="--num-rollout"):
        schedule_length(lr_decay_iters=None, num_rollout=None, num_steps_per_rollout=1, style="linear")


def test_optimizer_groups_exempt_1d_parameters_from_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    opt = build_optimizer(model.named_parameters(), optimizer="adam", lr=0.1, weight_decay=0.5,
                          adam_beta1=0.8, adam_beta2=0.9, adam_eps=1e-6)
    assert isinstance(opt, torch.optim.AdamW)
    decayed, exempt = opt.param_groups
    assert decayed["weight_decay"] == 0.5 and len(decayed["params"]) == 1
    assert exempt["weight_decay"] == 0.0 and len(exempt["params"]) == 3  # bias + norm weight + norm bias
    assert decayed["betas"] == (0.8, 0.9) and decayed["eps"] == 1e-6
    sgd = build_optimizer(model.named_parameters(), optimizer="sgd", lr=0.1, weight_decay=0.0, sgd_momentum=0.5)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    with pytest.raises(ValueError, match="adam or sgd"):
        build_optimizer(model.named_parameters(), optimizer="lion", lr=0.1, weight_decay=0.0)
