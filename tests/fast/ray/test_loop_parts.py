"""Pieces of the loop that need no cluster: metric rows, periodic actions, resume files, versions."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from miles_core.ray.loop import _periodic, flatten_train_metrics
from miles_core.ray.rollout_manager import oldest_weight_version
from miles_core.ray.run_files import count_saved_rollouts, supersede_metrics, write_run_config
from proc_support import child_pids


def test_periodic_is_every_interval_and_the_last_rollout():
    assert [r for r in range(10) if _periodic(r, 3, 10)] == [2, 5, 8, 9]
    assert not any(_periodic(r, None, 10) for r in range(10))


def test_flatten_train_metrics_means_steps_and_keeps_nested_train_side_metrics():
    answer = {
        "steps": [{"train/step": 4.0, "train/loss": 1.0, "train/grad_norm": 2.0},
                  {"train/step": 5.0, "train/loss": 3.0, "train/grad_norm": 4.0}],
        "rollout": {"rollout/advantages": 0.5, "rollout/note": "text is not a metric"},
        "perf": {"perf/actor_train_time": 1.5},
    }
    assert flatten_train_metrics(answer) == {"train/step": 5.0, "train/loss": 2.0, "train/grad_norm": 3.0,
                                             "rollout/advantages": 0.5, "perf/actor_train_time": 1.5}


def test_oldest_weight_version_is_the_minimum_over_every_token_version():
    groups = [[SimpleNamespace(weight_versions=["3", "4"]), SimpleNamespace(weight_versions=["4"])],
              [SimpleNamespace(weight_versions=[]), SimpleNamespace(weight_versions=["not-a-number", "5"])]]
    assert oldest_weight_version(groups) == 3.0
    assert oldest_weight_version([[SimpleNamespace(weight_versions=None)]]) is None


def write_rows(path, rollout_ids):
    path.write_text("".join(json.dumps({"rollout_id": i, "rollout/raw_reward": i / 10}) + "\n" for i in rollout_ids))


def test_supersede_metrics_moves_rows_logged_after_the_checkpoint(tmp_path):
    write_rows(tmp_path / "metrics.jsonl", [0, 1, 2, 3, 4, 5])
    assert supersede_metrics(tmp_path, 4) == 2
    kept = [json.loads(line)["rollout_id"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    moved = [json.loads(line)["rollout_id"] for line in (tmp_path / "metrics.superseded.jsonl").read_text().splitlines()]
    assert kept == [0, 1, 2, 3] and moved == [4, 5]
    assert supersede_metrics(tmp_path, 4) == 0  # nothing more to move
    assert supersede_metrics(tmp_path / "elsewhere", 1) == 0  # no metrics file yet


def test_count_saved_rollouts_counts_consecutive_files(tmp_path):
    template = str(tmp_path / "rollout_{rollout_id}.jsonl")
    with pytest.raises(FileNotFoundError, match="--load-debug-rollout-data"):
        count_saved_rollouts(template)
    for rollout_id in (0, 1, 2, 4):
        (tmp_path / f"rollout_{rollout_id}.jsonl").write_text("{}\n")
    assert count_saved_rollouts(template) == 3


def test_run_config_holds_the_json_values_of_the_flags(tmp_path):
    write_run_config(SimpleNamespace(lr=1e-3, run_dir=str(tmp_path), plugin_manager=object()), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 1e-3, "run_dir": str(tmp_path)}


def test_child_pids_finds_the_children_of_a_process():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in child_pids(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_ray_temp_root_is_used_only_when_short_enough(monkeypatch, tmp_path):
    from miles_core.ray.cluster import _temp_root

    monkeypatch.setenv("RAY_TMPDIR", "/tmp/short")
    assert _temp_root() == "/tmp/short"
    monkeypatch.setenv("RAY_TMPDIR", "/tmp/" + "x" * 40)
    assert _temp_root() is None  # Ray's socket paths would pass 107 bytes
    os.rmdir("/tmp/short")


def test_saves_are_due_with_save_only_every_interval_and_at_the_end():
    from miles_core.ray.loop import Trainer

    def due(**flags):
        trainer = Trainer(SimpleNamespace(run_dir="/tmp/unused", num_rollout=7, **flags), plugin_manager=None)
        return [r for r in range(7) if trainer._save_due(r)]

    assert due(save="/ckpt", save_interval=3) == [2, 5, 6]
    assert due(save="/ckpt", save_interval=None) == [6]
    assert due(save=None, save_interval=3) == []
