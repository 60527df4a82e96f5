"""Rollout groups → the training batch: normalisation, remove_sample, reward keys, trimming."""

from __future__ import annotations

import math
import sys
import types

import pytest
from miles_core.rollout.train_data import samples_to_train_data

from miles_core import Sample, SampleStatus


def _sample(index, group, reward, *, response_length=2, **fields):
    return Sample(index=index, group_index=group, tokens=[7] * (3 + response_length), response_length=response_length,
                  reward=reward, rollout_log_probs=[-0.5] * response_length, status=SampleStatus.COMPLETED, **fields)


@pytest.fixture
def grpo(miles_plugin_manager):
    return miles_plugin_manager.get("loss_estimators", "grpo")


def _groups(rewards_per_group):
    index, groups = 0, []
    for g, rewards in enumerate(rewards_per_group):
        group = []
        for reward in rewards:
            group.append(_sample(index, g, reward))
            index += 1
        groups.append(group)
    return groups


def test_group_normalisation_hand_computed(miles_args, grpo):
    args = miles_args(n_samples_per_prompt=4, global_batch_size=8)
    batch = samples_to_train_data(args, _groups([[1, 0, 0, 1], [1, 1, 1, 1]]), grpo)
    std = math.sqrt((4 * 0.25) / 3)  # unbiased std of [1, 0, 0, 1]
    expected = [0.5 / (std + 1e-6), -0.5 / (std + 1e-6), -0.5 / (std + 1e-6), 0.5 / (std + 1e-6), 0, 0, 0, 0]
    assert batch["rewards"] == pytest.approx(expected)
    assert batch["raw_reward"] == [1, 0, 0, 1, 1, 1, 1, 1]
    assert batch["sample_indices"] == list(range(8))
    assert batch["tokens"][0] == [7] * 5 and batch["response_lengths"] == [2] * 8
    assert batch["rollout_log_probs"][0] == [-0.5, -0.5]
    assert "teacher_log_probs" not in batch


def test_dr_grpo_and_disabled_normalisation(miles_args, grpo):
    groups = _groups([[1, 0, 0, 1]])
    no_std = samples_to_train_data(miles_args(n_samples_per_prompt=4, global_batch_size=4,
                                             disable_grpo_std_normalization=True), groups, grpo)
    assert no_std["rewards"] == pytest.approx([0.5, -0.5, -0.5, 0.5])
    off = samples_to_train_data(miles_args(n_samples_per_prompt=4, global_batch_size=4,
                                          disable_rewards_normalization=True), groups, grpo)
    assert off["rewards"] == [1, 0, 0, 1]


def test_removed_samples_keep_their_place_but_train_nothing(miles_args, grpo):
    groups = _groups([[1, 0, 0, 1]])
    groups[0][1].remove_sample = True
    groups[0][2].loss_mask = [1, 0]
    groups[0][3].status = SampleStatus.TRUNCATED
    batch = samples_to_train_data(miles_args(n_samples_per_prompt=4, global_batch_size=4,
                                            disable_grpo_std_normalization=True), groups, grpo)
    assert batch["loss_masks"] == [[1, 1], [0, 0], [1, 0], [1, 1]]
    assert batch["rewards"] == pytest.approx([0.5, -0.5, -0.5, 0.5])  # the removed sample still counts in the mean
    assert batch["truncated"] == [0, 0, 0, 1]


def test_dict_rewards_and_shaped_rewards(miles_args, grpo):
    groups = _groups([[{"score": 1.0, "acc": True}, {"score": -1.0, "acc": False}]])
    groups[0][0].metadata["raw_reward"] = {"score": 2.0}
    args = miles_args(n_samples_per_prompt=2, global_batch_size=2, reward_key="score", disable_rewards_normalization=True)
    batch = samples_to_train_data(args, groups, grpo)
    assert batch["rewards"] == [1.0, -1.0] and batch["raw_reward"] == [2.0, -1.0]
    with pytest.raises(ValueError, match="set --reward-key"):
        samples_to_train_data(miles_args(n_samples_per_prompt=2, global_batch_size=2), groups, grpo)


def test_custom_reward_post_process_replaces_normalisation(miles_args, grpo, monkeypatch):
    module = types.ModuleType("my_post_process_for_test")
    module.post = lambda args, samples: ([s.reward for s in samples], [10.0 * s.reward for s in samples])
    monkeypatch.setitem(sys.modules, "my_post_process_for_test", module)
    args = miles_args(n_samples_per_prompt=2, global_batch_size=2, custom_reward_post_process_path="my_post_process_for_test:post")
    batch = samples_to_train_data(args, _groups([[1, 0]]), grpo)
    assert batch["rewards"] == [10.0, 0.0] and batch["raw_reward"] == [1.0, 0.0]


def test_trimming_to_the_global_batch(miles_args, grpo, caplog):
    args = miles_args(n_samples_per_prompt=2, global_batch_size=4)
    batch = samples_to_train_data(args, _groups([[1, 0], [1, 0], [0, 1]]), grpo)
    assert batch["sample_indices"] == [0, 1, 2, 3]
    assert "trimming the rollout from 6 to 4 samples" in caplog.text
    with pytest.raises(ValueError, match="returned 2 samples, fewer than one --global-batch-size"):
        samples_to_train_data(args, _groups([[1, 0]]), grpo)


def test_log_probs_must_be_all_or_nothing(miles_args, grpo):
    groups = _groups([[1, 0]])
    groups[0][1].rollout_log_probs = None
    with pytest.raises(ValueError, match=r"some samples have rollout log-probs and some do not \(e.g. sample indices \[1\]\)"):
        samples_to_train_data(miles_args(n_samples_per_prompt=2, global_batch_size=2), groups, grpo)
    for sample in groups[0]:
        sample.rollout_log_probs = [-0.1, -0.2]
        sample.teacher_log_probs = [-1.0, -2.0]
    batch = samples_to_train_data(miles_args(n_samples_per_prompt=2, global_batch_size=2), groups, grpo)
    assert batch["teacher_log_probs"] == [[-1.0, -2.0]] * 2


def test_inconsistent_lengths_are_reported(miles_args, grpo):
    groups = _groups([[1, 0]])
    groups[0][0].rollout_log_probs = [-0.1]
    with pytest.raises(ValueError, match=r"sample 0: len\(rollout_log_probs\)=1 but response_length=2"):
        samples_to_train_data(miles_args(n_samples_per_prompt=2, global_batch_size=2), groups, grpo)


def test_a_rollout_thinner_than_one_global_batch_skips_its_step(miles_args, grpo, caplog):
    from miles_core.rollout.train_data import train_data_or_skip

    args = miles_args(n_samples_per_prompt=4, global_batch_size=8)
    flat = [s for g in _groups([[1, 0, 0, 1]]) for s in g]
    with caplog.at_level("WARNING"):
        assert train_data_or_skip(args, flat, grpo, rollout_id=7) is None
    assert "rollout 7: 4 samples survived the filters, fewer than one --global-batch-size (8)" in caplog.text
    full = [s for g in _groups([[1, 0, 0, 1], [0, 1, 1, 1]]) for s in g]
    assert len(train_data_or_skip(args, full, grpo, rollout_id=8)["tokens"]) == 8
