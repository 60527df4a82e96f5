"""``nonzero_std``: DAPO dynamic sampling on hand-built groups, through the registered spec."""

from __future__ import annotations

import math

import pytest
from filters_dapo_support import make_group, namespace
from miles_core.plugins.manager import PluginSelection
from miles_filters_dapo.nonzero_std import unbiased_std

from miles_core import DynamicFilterOutput, RewardModelSpec


@pytest.fixture(scope="module")
def nonzero_std(dapo_manager):
    spec = dapo_manager.get("filters", "nonzero_std", flag="--dynamic-sampling-filter")
    assert spec.stage == "dynamic_sampling"
    return spec.fn


@pytest.mark.parametrize(("rewards", "expected"), [
    ([1, 0, 0, 1], DynamicFilterOutput(keep=True)),
    ([1.0, 1.0, 1.0, 1.0], DynamicFilterOutput(keep=False, reason="zero_std_1.0")),
    ([0, 0, 0, 0], DynamicFilterOutput(keep=False, reason="zero_std_0.0")),
    ([-1.0, -1.0], DynamicFilterOutput(keep=False, reason="zero_std_-1.0")),
    ([0.25, 0.25, 0.25], DynamicFilterOutput(keep=False, reason="zero_std_0.2")),  # Miles rounds to 1 decimal
    ([0.5, 0.5 + 1e-12], DynamicFilterOutput(keep=False, reason="zero_std_0.5")),  # below the 1e-8 threshold
    ([0.5, 0.5 + 1e-6], DynamicFilterOutput(keep=True)),
    ([1.0], DynamicFilterOutput(keep=False, reason="single_sample")),
    ([1.0, math.nan], DynamicFilterOutput(keep=False, reason="nan_reward")),
])
def test_drops_groups_whose_rewards_are_equal(nonzero_std, rewards, expected):
    assert nonzero_std(namespace(), make_group(rewards)) == expected


def test_alias_is_the_same_filter(dapo_manager, nonzero_std):
    assert dapo_manager.get("filters", "check_reward_nonzero_std").fn is nonzero_std


def test_nested_groups_are_flattened(nonzero_std):
    assert nonzero_std(namespace(), [make_group([1, 1]), make_group([1])]).reason == "zero_std_1.0"
    assert nonzero_std(namespace(), [make_group([1, 1]), make_group([0])]).keep
    assert nonzero_std(namespace(), []).reason == "empty_group"


def test_dict_rewards_use_the_reward_key(nonzero_std):
    group = make_group([{"score": 1.0, "acc": True}, {"score": -1.0, "acc": False}])
    assert nonzero_std(namespace(reward_key="score"), group).keep
    same = make_group([{"score": 1.0, "acc": True}, {"score": 1.0, "acc": True}])
    assert nonzero_std(namespace(reward_key="score"), same).reason == "zero_std_1.0"


def test_dict_rewards_fall_back_to_the_reward_models_default_key(nonzero_std, monkeypatch):
    """No --reward-key: the key is the default of the reward model named by metadata['rm_type'] / --rm-type."""
    import miles_core.plugins.manager as manager_module

    from miles_filters_dapo import group_rewards

    real_builder = manager_module.plugin_manager_from_args

    def manager_with_dict_rm(args):
        manager = real_builder(args)
        manager.add_adhoc_spec("reward_models", RewardModelSpec(
            name="dict_rm", description="a reward answering a dict", fn=lambda args, sample: {}, reward_key="score"),
            source="--custom-rm-path tests:dict_rm")
        return manager

    monkeypatch.setattr(manager_module, "plugin_manager_from_args", manager_with_dict_rm)
    monkeypatch.setattr(group_rewards, "_spec_keys", {})
    args = namespace(rm_type="dict_rm", plugin_selection=PluginSelection(autoload=False).to_dict())
    assert nonzero_std(args, make_group([{"score": 1.0, "acc": True}, {"score": 0.0, "acc": False}])).keep
    per_sample = make_group([{"score": 1.0}, {"score": 1.0}])
    for sample in per_sample:
        sample.metadata["rm_type"] = "dict_rm"
    assert nonzero_std(namespace(plugin_selection=args.plugin_selection), per_sample).reason == "zero_std_1.0"


def test_dict_reward_without_any_key_is_a_clear_error(nonzero_std):
    with pytest.raises(ValueError, match="--reward-key"):
        nonzero_std(namespace(), make_group([{"score": 1.0}, {"score": 0.0}]))


def test_unbiased_std_matches_the_textbook_value():
    # rewards 1, 0, 0, 1: mean 0.5, squared deviations sum to 1, divided by n - 1 = 3
    assert unbiased_std([1, 0, 0, 1]) == pytest.approx(math.sqrt(1 / 3))
