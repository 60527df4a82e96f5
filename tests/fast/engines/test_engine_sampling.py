"""Per-row sampling on hand-computed distributions: inverse CDF, top-k/top-p/min-p, penalties, seeds."""

from __future__ import annotations

import math

import pytest
import torch
from miles_core.engines.embedded.params import SamplingParams
from miles_core.engines.embedded.sampling import (
    BatchSampling,
    apply_penalties,
    draw_uniforms,
    sample_tokens,
    tempered_log_probs,
)

PROBS = [0.5, 0.3, 0.2]
LOGITS = torch.tensor([[math.log(p) for p in PROBS]])


def sampling(**params) -> BatchSampling:
    return BatchSampling.from_params([SamplingParams.from_dict(params)], vocab_size=3, device=torch.device("cpu"))


def draw(u: float, **params) -> int:
    return int(sample_tokens(LOGITS.clone(), sampling(**params), torch.tensor([u]))[0])


def test_reported_log_probs_are_log_softmax_of_logits_over_temperature():
    logits = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    temperature = torch.tensor([0.5, 2.0])
    expected = torch.log_softmax(logits / temperature.unsqueeze(-1), dim=-1)
    assert torch.allclose(tempered_log_probs(logits, temperature), expected)


@pytest.mark.parametrize("u,token", [(1e-9, 0), (0.45, 0), (0.55, 1), (0.75, 1), (0.85, 2), (1.0, 2)])
def test_inverse_cdf_hits_the_token_whose_interval_holds_u(u, token):
    # cdf = [0.5, 0.8, 1.0]: token i is drawn when cdf[i-1] < u <= cdf[i].
    assert draw(u) == token


def test_greedy_rows_take_the_argmax_whatever_the_uniform():
    assert draw(1.0, temperature=0) == 0


def test_top_k_one_is_the_argmax():
    assert draw(1.0, top_k=1) == 0


@pytest.mark.parametrize("u,token", [(0.6, 0), (0.65, 1), (1.0, 1)])
def test_top_p_keeps_the_smallest_prefix_reaching_p(u, token):
    # top_p=0.6: token 0 (mass before 0.0) and token 1 (mass before 0.5 < 0.6) survive, token 2 does not;
    # renormalised cdf = [0.625, 1.0].
    assert draw(u, top_p=0.6) == token


def test_min_p_drops_tokens_below_a_fraction_of_the_top_probability():
    # min_p=0.5 → threshold 0.25: tokens 0 and 1 survive, so even u=1 cannot reach token 2.
    assert draw(1.0, min_p=0.5) == 1


def test_filters_are_judged_on_the_untruncated_probabilities():
    # top_k=2 and top_p=0.4: top_p alone keeps only token 0 (0.5 before token 1 >= 0.4).
    assert draw(1.0, top_k=2, top_p=0.4) == 0


def test_sampling_matches_the_distribution():
    generator = torch.Generator().manual_seed(0)
    rows = 4000
    logits = LOGITS.repeat(rows, 1)
    batch = BatchSampling.from_params([SamplingParams()] * rows, vocab_size=3, device=torch.device("cpu"))
    uniforms = draw_uniforms([generator] * rows)
    counts = torch.bincount(sample_tokens(logits, batch, uniforms), minlength=3).float() / rows
    assert torch.allclose(counts, torch.tensor(PROBS), atol=0.03)


def test_each_row_draws_from_its_own_generator():
    a = draw_uniforms([torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)])
    b = draw_uniforms([torch.Generator().manual_seed(7)])
    assert a[0] == b[0] and a[0] != a[1] and bool((a > 0).all()) and bool((a <= 1).all())
    assert draw_uniforms([None]).tolist() == [1.0]


def test_penalties_on_hand_computed_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    params = SamplingParams.from_dict({"repetition_penalty": 2.0})
    # CTRL: seen tokens 0 (2.0 -> 1.0) and 1 (-1.0 -> -2.0); unseen 2, 3 untouched.
    out = apply_penalties(logits.clone(), [params], prompt_ids=[[0]], output_ids=[[1]])
    assert out.tolist() == [[1.0, -2.0, 0.5, 0.0]]
    params = SamplingParams.from_dict({"frequency_penalty": 0.5, "presence_penalty": 0.25, "logit_bias": {"3": 1.0}})
    # token 2 generated twice: 0.5 - 2*0.5 - 0.25 = -0.75; token 3 biased +1.
    out = apply_penalties(logits.clone(), [params], prompt_ids=[[0]], output_ids=[[2, 2]])
    assert out.tolist() == [[2.0, -1.0, -0.75, 1.0]]


def test_rows_without_penalties_are_untouched():
    logits = torch.tensor([[2.0, -1.0]])
    assert apply_penalties(logits.clone(), [SamplingParams()], [[0]], [[1]]).tolist() == logits.tolist()
