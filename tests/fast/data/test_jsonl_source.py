"""The jsonl data source: groups and indices, epochs, seeded shuffling, the buffer, and exact resumption."""

from __future__ import annotations

import json
import random

import pytest
from miles_core.data.jsonl_source import JsonlDataSource, derive_num_rollout, state_path
from miles_core.data.sample import SampleStatus

from miles_core import DataSourceSpec, FilterSpec, hookimpl


@pytest.fixture
def prompts(write_jsonl):
    return write_jsonl([{"prompt": f"q{i}", "label": str(i), "metadata": {"i": i}} for i in range(5)])


def _prompts_of(groups):
    return [group[0].prompt for group in groups]


def test_groups_copy_each_prompt_with_running_indices(miles_args, prompts):
    source = JsonlDataSource(miles_args(prompt_data=prompts, n_samples_per_prompt=3))
    groups = source.get_samples(2)
    assert [[s.index for s in g] for g in groups] == [[0, 1, 2], [3, 4, 5]]
    assert [[s.group_index for s in g] for g in groups] == [[0, 0, 0], [1, 1, 1]]
    assert _prompts_of(groups) == ["q0", "q1"]
    assert groups[0][0].label == "0" and groups[0][0].status == SampleStatus.PENDING
    groups[0][0].metadata["i"] = 99  # copies are independent
    assert groups[0][1].metadata["i"] == 0
    assert [s.index for s in source.get_samples(1)[0]] == [6, 7, 8]


def test_epochs_wrap_around_and_shuffle_per_epoch_with_the_seed(miles_args, prompts):
    plain = JsonlDataSource(miles_args(prompt_data=prompts))
    assert _prompts_of(plain.get_samples(7)) == ["q0", "q1", "q2", "q3", "q4", "q0", "q1"]
    assert plain.epoch == 1

    def shuffled_epochs(seed):
        source = JsonlDataSource(miles_args(prompt_data=prompts, rollout_shuffle=True, rollout_seed=seed))
        return _prompts_of(source.get_samples(5)), _prompts_of(source.get_samples(5))

    def permutation(seed):
        order = list(range(5))
        random.Random(seed).shuffle(order)
        return [f"q{i}" for i in order]

    first, second = shuffled_epochs(7)
    assert first == permutation(7 + 0) and second == permutation(7 + 1)  # --rollout-seed + epoch
    assert first != second
    assert (first, second) == shuffled_epochs(7)


def test_buffered_groups_come_first_in_fifo_order(miles_args, prompts):
    source = JsonlDataSource(miles_args(prompt_data=prompts, n_samples_per_prompt=2))
    a, b = source.get_samples(2)
    for sample in a + b:
        sample.status = SampleStatus.ABORTED
    source.add_samples([a, b])
    assert source.get_buffer_length() == 2
    again = source.get_samples(3)
    assert again[0] is a and again[1] is b
    assert _prompts_of(again) == ["q0", "q1", "q2"]
    assert source.get_buffer_length() == 0


def test_add_samples_rejects_incomplete_groups(miles_args, prompts):
    source = JsonlDataSource(miles_args(prompt_data=prompts, n_samples_per_prompt=2))
    group = source.get_samples(1)[0]
    with pytest.raises(ValueError, match="a group has 1 samples but --n-samples-per-prompt is 2"):
        source.add_samples([group[:1]])


def test_the_selected_buffer_filter_drains_the_buffer(miles_args, prompts, miles_plugin_manager, register_plugin):
    class NewestFirst:
        @hookimpl
        def miles_filters(self):
            def newest_first(args, rollout_id, buffer, num_samples):
                taken = buffer[::-1][:num_samples]
                for group in taken:
                    buffer.remove(group)
                return taken

            yield FilterSpec(name="newest_first", description="LIFO buffer", fn=newest_first, stage="buffer")

    register_plugin(NewestFirst(), name="newest_first_plugin")
    source = JsonlDataSource(miles_args(prompt_data=prompts, buffer_filter="newest_first"),
                             plugin_manager=miles_plugin_manager)
    a, b = source.get_samples(2)
    source.add_samples([a, b])
    assert source.get_samples(1)[0] is b


def test_save_then_load_continues_exactly_like_an_uninterrupted_run(miles_args, prompts, tmp_path):
    def args():
        return miles_args(prompt_data=prompts, n_samples_per_prompt=2, rollout_shuffle=True, rollout_seed=3,
                         save=str(tmp_path / "ckpt"), load=str(tmp_path / "ckpt"))

    uninterrupted = JsonlDataSource(args())
    interrupted = JsonlDataSource(args())
    for source in (uninterrupted, interrupted):
        source.get_samples(2)
        held = source.get_samples(2)  # epoch 0 ends inside the next call
        held[1][0].response, held[1][0].status = "partial", SampleStatus.ABORTED
        source.add_samples([held[1]])
    interrupted.save(rollout_id=1)

    saved = json.loads(state_path(tmp_path / "ckpt", 1).read_text())
    assert saved["buffer"][0][0]["response"] == "partial"  # the buffer is part of the state, as JSON

    resumed = JsonlDataSource(args())
    resumed.load(rollout_id=1)
    for _ in range(3):
        expected, got = uninterrupted.get_samples(2), resumed.get_samples(2)
        assert [[s.to_dict() for s in g] for g in got] == [[s.to_dict() for s in g] for g in expected]

    latest = JsonlDataSource(args())
    latest.load()  # no id: the latest saved state
    assert latest.get_samples(1)[0][0].response == "partial"


def test_load_refuses_a_state_for_other_data(miles_args, prompts, write_jsonl, tmp_path):
    saver = JsonlDataSource(miles_args(prompt_data=prompts, save=str(tmp_path)))
    saver.save(rollout_id=0)
    other = write_jsonl([{"prompt": "x"}], name="other.jsonl")
    loader = JsonlDataSource(miles_args(prompt_data=other, load=str(tmp_path)))
    with pytest.raises(ValueError, match=r"saved for a dataset of 5 prompts, but --prompt-data .* now has 1"):
        loader.load(rollout_id=0)


def test_load_without_saved_state_starts_from_the_beginning(miles_args, prompts, tmp_path, caplog):
    source = JsonlDataSource(miles_args(prompt_data=prompts, load=str(tmp_path)))
    source.load()
    assert "holds no data-source state" in caplog.text
    assert _prompts_of(source.get_samples(1)) == ["q0"]


def test_derive_num_rollout(miles_args, prompts):
    assert derive_num_rollout(miles_args(prompt_data=prompts, rollout_batch_size=2, num_epoch=3)) == 6
    assert derive_num_rollout(miles_args(prompt_data=prompts, rollout_batch_size=2)) == 2  # one epoch by default
    assert derive_num_rollout(miles_args(prompt_data=prompts, rollout_batch_size=2, num_rollout=11)) == 11
    with pytest.raises(ValueError, match="has 5 usable prompts, fewer than --rollout-batch-size 8"):
        derive_num_rollout(miles_args(prompt_data=prompts, rollout_batch_size=8))


def test_registered_as_the_jsonl_data_source(miles_plugin_manager):
    spec = miles_plugin_manager.get("data_sources", "jsonl")
    assert isinstance(spec, DataSourceSpec) and spec.factory is JsonlDataSource
