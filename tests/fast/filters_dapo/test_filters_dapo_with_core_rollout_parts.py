"""DAPO end to end through the core's own rollout parts: ``--rm-type dapo`` scoring (miles-rm-math),
overlong shaping and ``nonzero_std`` (miles-filters-dapo), as the train rollout chains them per group."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from miles_core.data.sample import Sample
from miles_core.filters.dynamic import call_dynamic_filter
from miles_core.filters.selection import resolve_filter
from miles_core.plugins.manager import PluginSelection, build_plugin_manager
from miles_core.rewards.dispatch import RewardDispatcher

pytest.importorskip("miles_rm_math")


@pytest.fixture(scope="module")
def manager():
    return build_plugin_manager(PluginSelection(requested=("miles-rm-math", "miles-filters-dapo"), autoload=False))


def _args() -> argparse.Namespace:
    return argparse.Namespace(
        rm_type="dapo", custom_rm_path=None, group_rm=False, reward_key=None, eval_reward_key=None,
        dynamic_sampling_filter="nonzero_std", dynamic_sampling_filter_path=None, n_samples_per_prompt=4,
        rollout_max_response_len=20, eval_max_response_len=None, overlong_buffer_len=4,
        overlong_penalty_factor=None, overlong_penalty_in_eval=False, math_verify_timeout=20.0,
        math_verify_workers=1, math_verify_memory_limit_mb=2048)


def _group(answers: list[str], lengths: list[int]) -> list[Sample]:
    return [Sample(index=i, group_index=0, response=f"work\nAnswer: {a}", response_length=n, label="12")
            for i, (a, n) in enumerate(zip(answers, lengths, strict=True))]


def _score_shape_filter(manager, args, group):
    dispatcher = RewardDispatcher(args, manager)  # sets --reward-key to dapo's default key, "score"
    asyncio.run(dispatcher.score_group(group))
    manager.hook.miles_after_rewards(args=args, samples=group, evaluation=False)
    return call_dynamic_filter(resolve_filter(args, manager, "dynamic_sampling"), args, group)


def test_mixed_group_is_scored_shaped_and_kept(manager):
    args = _args()
    group = _group(["12", "\\frac{24}{2}", "13", "12"], lengths=[5, 18, 10, 25])
    verdict = _score_shape_filter(manager, args, group)
    assert args.reward_key == "score"
    assert [s.reward["score"] for s in group] == pytest.approx([1.0, 0.5, -1.0, 0.0])
    assert [s.metadata["raw_reward"] for s in group] == [1.0, 1.0, -1.0, 1.0]
    assert verdict.keep


def test_all_wrong_group_is_dropped_with_its_reason(manager):
    verdict = _score_shape_filter(manager, _args(), _group(["1", "2", "3", "x"], lengths=[5, 5, 5, 5]))
    assert not verdict.keep and verdict.reason == "zero_std_-1.0"
