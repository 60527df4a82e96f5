"""Which reward scores a sample, how it is called, and what happens when it raises."""

from __future__ import annotations

import asyncio
import sys
import threading
import types

import pytest
from miles_core.plugins.manager import UnknownNameError
from miles_core.rewards.dispatch import RewardDispatcher

from miles_core import RewardModelSpec, Sample, SampleStatus, hookimpl


class ScriptedRewards:
    """Rewards registered for these tests only."""

    def __init__(self):
        self.threads: list[str] = []
        self.batches: list[int] = []

    @hookimpl
    def miles_reward_models(self):
        def length(args, sample, **kwargs):
            self.threads.append(threading.current_thread().name)
            return len(sample.response)

        async def explode(args, sample, **kwargs):
            raise RuntimeError("judge is down")

        async def graded(args, sample, **kwargs):
            return {"score": 1.0 if sample.response == sample.label else -1.0, "pred": sample.response}

        def batch_length(args, samples, **kwargs):
            self.batches.append(len(samples))
            return [len(s.response) for s in samples]

        yield RewardModelSpec(name="length", description="response length", fn=length)
        yield RewardModelSpec(name="explode", description="always raises", fn=explode)
        yield RewardModelSpec(name="graded", description="dict reward", fn=graded, reward_key="score")
        yield RewardModelSpec(name="batch_length", description="batched length", fn=batch_length, batched=True)


@pytest.fixture
def rewards(register_plugin):
    plugin = ScriptedRewards()
    register_plugin(plugin, name="test_rewards")
    return plugin


def _score(dispatcher, *samples, group=False):
    if group:
        asyncio.run(dispatcher.score_group(list(samples)))
    else:
        for sample in samples:
            asyncio.run(dispatcher.score_sample(sample))
    return [s.reward for s in samples]


def test_rm_type_and_per_sample_override(miles_args, miles_plugin_manager, rewards):
    dispatcher = RewardDispatcher(miles_args(rm_type="length"), miles_plugin_manager)
    plain = Sample(response="abcd")
    override = Sample(response="abcd", label="abcd", metadata={"rm_type": "f1"})
    assert _score(dispatcher, plain, override) == [4.0, 1.0]
    assert rewards.threads and rewards.threads[0] != threading.main_thread().name  # sync rewards run in a thread


def test_boxed_prefix_grades_the_last_box(miles_args, miles_plugin_manager, rewards):
    dispatcher = RewardDispatcher(miles_args(rm_type="boxed_length"), miles_plugin_manager)
    sample = Sample(response=r"work work \boxed{12} and finally \boxed{345}")
    assert _score(dispatcher, sample) == [3.0]
    assert sample.response.endswith(r"\boxed{345}")  # the sample itself is unchanged
    assert _score(dispatcher, Sample(response="no box")) == [0.0]


def test_unknown_names_fail_before_scoring(miles_args, miles_plugin_manager, rewards):
    with pytest.raises(UnknownNameError, match=r"--rm-type 'nope'.*Available: .*f1.*length"):
        RewardDispatcher(miles_args(rm_type="nope"), miles_plugin_manager)
    with pytest.raises(UnknownNameError, match="miles-rm-math"):
        RewardDispatcher(miles_args(rm_type="boxed_math"), miles_plugin_manager)
    dispatcher = RewardDispatcher(miles_args(), miles_plugin_manager)
    with pytest.raises(ValueError, match="no reward model is selected: set --rm-type"):
        _score(dispatcher, Sample(response="x"))


def test_a_raising_reward_fails_only_its_sample(miles_args, miles_plugin_manager, rewards):
    dispatcher = RewardDispatcher(miles_args(rm_type="length"), miles_plugin_manager)
    bad = Sample(index=3, response="x", metadata={"rm_type": "explode"})
    good = Sample(index=4, response="xy")
    _score(dispatcher, bad, good, group=True)
    assert bad.status == SampleStatus.FAILED and bad.reward is None
    assert bad.metadata["error"] == "reward 'explode' raised RuntimeError: judge is down"
    assert bad.metadata["error_kind"] == "reward"
    assert good.reward == 2.0


def test_dict_rewards_default_the_reward_key(miles_args, miles_plugin_manager, rewards):
    args = miles_args(rm_type="graded")
    dispatcher = RewardDispatcher(args, miles_plugin_manager)
    assert args.reward_key == "score" and args.eval_reward_key == "score"
    sample = Sample(response="7", label="7")
    _score(dispatcher, sample)
    assert sample.reward == {"score": 1.0, "pred": "7"}
    assert sample.get_reward_value(args) == 1.0


def test_group_rm_calls_a_batched_reward_once(miles_args, miles_plugin_manager, rewards):
    dispatcher = RewardDispatcher(miles_args(rm_type="batch_length", group_rm=True), miles_plugin_manager)
    samples = [Sample(response="a" * n) for n in (1, 2, 3)]
    samples.append(Sample(response="skip", status=SampleStatus.ABORTED))
    assert _score(dispatcher, *samples, group=True) == [1.0, 2.0, 3.0, None]
    assert rewards.batches == [3]


def test_custom_rm_path_wins(miles_args, miles_plugin_manager, rewards, monkeypatch):
    module = types.ModuleType("my_rm_for_test")

    async def my_rm(args, sample):
        return 42

    module.my_rm = my_rm
    monkeypatch.setitem(sys.modules, "my_rm_for_test", module)
    dispatcher = RewardDispatcher(miles_args(rm_type="length", custom_rm_path="my_rm_for_test:my_rm"),
                                  miles_plugin_manager)
    assert _score(dispatcher, Sample(response="abc", metadata={"rm_type": "f1"})) == [42.0]


def test_a_reward_of_the_wrong_type_fails_the_sample(miles_args, miles_plugin_manager, register_plugin):
    class Bad:
        @hookimpl
        def miles_reward_models(self):
            yield RewardModelSpec(name="texty", description="returns text", fn=lambda args, sample: "good")

    register_plugin(Bad(), name="bad_rewards")
    dispatcher = RewardDispatcher(miles_args(rm_type="texty"), miles_plugin_manager)
    sample = Sample(response="x")
    _score(dispatcher, sample)
    assert sample.status == SampleStatus.FAILED
    assert "returned str 'good'; expected a number or a dict" in sample.metadata["error"]
