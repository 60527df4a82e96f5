"""Steps, data-parallel shares, micro-batch plans and collation (no model needed)."""

from __future__ import annotations

import pytest
import torch
from miles_core.training.batching import (
    collate,
    count_dynamic_micro_batches,
    plan_micro_batches,
    split_across_ranks,
    split_into_steps,
)


def test_steps_are_contiguous_and_cover_every_sample():
    assert split_into_steps(8, 2) == [range(0, 4), range(4, 8)]
    assert split_into_steps(7, 3) == [range(0, 3), range(3, 5), range(5, 7)]
    with pytest.raises(ValueError, match="fewer than --num-steps-per-rollout"):
        split_into_steps(1, 2)


def test_rank_shares_plain_and_balanced():
    lengths = [10, 1, 1, 1, 9, 1]
    assert split_across_ranks(range(6), lengths, 2) == [[0, 1, 2], [3, 4, 5]]
    balanced = split_across_ranks(range(6), lengths, 2, balance=True)
    assert sorted(i for share in balanced for i in share) == list(range(6))
    assert [len(s) for s in balanced] == [3, 3]
    token_counts = sorted(sum(lengths[i] for i in share) for share in balanced)
    assert token_counts == [11, 12]  # 10+1+1 vs 9+1+1 instead of 12 vs 11 by luck of order
    with pytest.raises(ValueError, match="every rank gets a sample"):
        split_across_ranks([0], [5], 2)


def test_dynamic_plan_respects_the_token_budget_and_balances():
    lengths = [7, 3, 5, 5, 2, 8]
    assert count_dynamic_micro_batches(lengths, 10) == 3  # 8+2, 7+3, 5+5: exactly full
    assert count_dynamic_micro_batches(lengths, 9) == 4
    plan = plan_micro_batches(range(6), lengths, max_tokens=10)
    assert sorted(sorted(mb) for mb in plan) == [[0, 1], [2, 3], [4, 5]]  # each bin exactly 10 tokens
    plan = plan_micro_batches(range(6), lengths, max_tokens=9)
    assert sorted(i for mb in plan for i in mb) == list(range(6))
    assert all(sum(lengths[i] for i in mb) <= 9 for mb in plan)


def test_dynamic_plan_pads_to_min_count_and_isolates_oversized_samples():
    plan = plan_micro_batches([0, 1], [4, 4], max_tokens=100, min_count=3)
    assert len(plan) == 3 and sorted(len(mb) for mb in plan) == [0, 1, 1]
    plan = plan_micro_batches([0, 1, 2], [50, 3, 3], max_tokens=10)
    assert [0] in plan and all(sum([50, 3, 3][i] for i in mb) <= 10 for mb in plan if mb != [0])


def test_fixed_plan():
    assert plan_micro_batches(range(5), [1] * 5, micro_batch_size=2) == [[0, 1], [2, 3], [4]]
    assert plan_micro_batches(range(1), [1], micro_batch_size=2, min_count=2) == [[0], []]


def test_packed_collation_restarts_positions_per_sample():
    tokens = [[5, 6, 7], [8, 9], [1, 2, 3, 4]]
    mb = collate(tokens, [1, 1, 2], [0, 2], packed=True)
    assert mb.input_ids.tolist() == [[5, 6, 7, 1, 2, 3, 4]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 0, 1, 2, 3]]
    assert mb.attention_mask is None
    assert [list(s.logit_positions) for s in mb.spans] == [[1], [4, 5]]
    assert mb.num_tokens == 7


def test_padded_collation_masks_padding():
    mb = collate([[5, 6, 7], [8, 9]], [1, 1], [0, 1], packed=False, pad_token_id=0)
    assert mb.input_ids.tolist() == [[5, 6, 7], [8, 9, 0]]
    assert mb.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert [list(s.logit_positions) for s in mb.spans] == [[1], [0]]
    assert torch.equal(mb.position_ids[1, :2], torch.tensor([0, 1]))


def test_empty_micro_batch_is_a_one_token_dummy():
    mb = collate([[1, 2]], [1], [], packed=True)
    assert mb.is_empty and mb.input_ids.shape == (1, 1)


def test_bad_response_length_is_reported():
    with pytest.raises(ValueError, match="sample 0: response_length 3"):
        collate([[1, 2, 3]], [3], [0], packed=True)
