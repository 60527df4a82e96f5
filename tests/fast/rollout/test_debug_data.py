"""Debug rollout files: JSON lines with a header, loaded back equal, and nothing else accepted."""

from __future__ import annotations

import pickle

import pytest
from miles_core.rollout.debug_data import (
    debug_data_path,
    load_debug_rollout,
    read_debug_rollout_file,
    save_debug_rollout,
)

from miles_core import Sample, SampleStatus


def _groups():
    return [
        [Sample(index=0, group_index=0, prompt=[{"role": "user", "content": "hi"}], tokens=[1, 2, 3], response="x",
                response_length=1, label={"answer": 3}, metadata={"nested": {"a": [1, 2]}}, reward={"score": 1.0},
                rollout_log_probs=[-0.25], status=SampleStatus.COMPLETED, weight_versions=["2"]),
         Sample(index=1, group_index=0, prompt="hi", tokens=[1, 2], status=SampleStatus.FAILED,
                metadata={"error": "boom"}, remove_sample=True)],
        [Sample(index=2, group_index=1, prompt="yo", tokens=[4, 5, 6], response_length=1, reward=0.0,
                loss_mask=[0], teacher_log_probs=[-1.5], rollout_log_probs=[-0.5], status=SampleStatus.TRUNCATED)],
    ]


def test_saved_rollout_loads_back_equal(tmp_path):
    template = str(tmp_path / "dump" / "r_{rollout_id}.jsonl")
    path = save_debug_rollout(template, 7, _groups())
    assert path == tmp_path / "dump" / "r_7.jsonl"
    loaded = load_debug_rollout(template, 7)
    assert [[s.to_dict() for s in g] for g in loaded] == [[s.to_dict() for s in g] for g in _groups()]
    assert loaded[0][0].status is SampleStatus.COMPLETED


def test_eval_files_keep_dataset_names(tmp_path):
    template = str(tmp_path / "{rollout_id}.jsonl")
    save_debug_rollout(template, 2, _groups(), evaluation=True, datasets=["aime", "gsm8k"])
    header, groups, datasets = read_debug_rollout_file(debug_data_path(template, 2, evaluation=True))
    assert header["evaluation"] is True and header["num_samples"] == 3
    assert datasets == ["aime", "gsm8k"] and len(groups) == 2
    assert debug_data_path(template, 2, evaluation=True).name == "eval_2.jsonl"


def test_only_our_format_is_read(tmp_path):
    pickled = tmp_path / "r_0.pt"
    pickled.write_bytes(pickle.dumps({"samples": []}))
    with pytest.raises(ValueError):
        read_debug_rollout_file(pickled)
    other = tmp_path / "r_1.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="not a miles-debug-rollout header"):
        read_debug_rollout_file(other)
    with pytest.raises(FileNotFoundError, match="--load-debug-rollout-data"):
        read_debug_rollout_file(tmp_path / "missing.jsonl")


def test_truncated_and_corrupt_files_are_reported(tmp_path):
    path = save_debug_rollout(str(tmp_path / "r_{rollout_id}.jsonl"), 0, _groups())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="announces 3 samples but the file holds 2"):
        read_debug_rollout_file(path)
    path.write_text("\n".join(lines[:2] + ['{"group": 0, "sample": {"bogus": 1}}']) + "\n")
    with pytest.raises(ValueError, match=r"r_0.jsonl:3: not a debug rollout row .*unknown Sample field"):
        read_debug_rollout_file(path)


def test_bad_templates_are_explained(tmp_path):
    with pytest.raises(ValueError, match=r"only \{rollout_id\} may be templated"):
        debug_data_path(str(tmp_path / "{step}.jsonl"), 0)
