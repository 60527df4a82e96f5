"""Debug modes end to end: generate only and record, then train only on the recording.

1. ``--debug-rollout-only --save-debug-rollout-data``: no train rank and no weight sync; every rollout
   is written to disk. A ``--custom-rollout-log-function-path`` that returns ``True`` replaces the
   default rollout logging (Miles's semantics) and prints from the rollout manager's process: the
   print must reach the driver's output.
2. ``--load-debug-rollout-data`` (implies ``--debug-train-only``): no engine and no router; the
   trainer trains on the recorded rollouts, as many as were recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import base_flags, mean, rollout_rows

pytestmark = pytest.mark.e2e

PROMPTS = 4


def recorded_rewards(path: Path) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]
    return [row["sample"]["reward"] for row in rows]


def test_rollout_only_records_and_train_only_replays(tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    dumps = tmp_path / "dumps" / "rollout_{rollout_id}.jsonl"
    rollout_dir, train_dir = tmp_path / "rollout-only", tmp_path / "train-only"
    flags = base_flags(tiny_qwen3, say_digit_prompts, rollout_dir, prompts_per_rollout=PROMPTS, num_rollout=2)
    env = {"PYTHONPATH": str(Path(__file__).parent)}
    recording = miles_train([*flags, "--debug-rollout-only", "--save-debug-rollout-data", str(dumps),
                             "--custom-rollout-log-function-path", "custom_logging:log_rollout_and_suppress_default"],
                            env=env).run(240)

    rows = rollout_rows(rollout_dir)
    assert [row["rollout_id"] for row in rows] == [0, 1]
    for row in rows:
        assert row["custom/num_samples"] == PROMPTS * 8
        assert not [k for k in row if k.startswith(("train/", "rollout/response_len", "rollout/raw_reward"))], row
        assert "perf/update_weights_time" not in row and "perf/train_time" not in row
    output = recording.output()
    assert "custom rollout log: rollout 1 has 32 samples" in output  # printed in the rollout manager's process
    assert "TrainRankActor" not in output
    files = sorted(dumps.parent.glob("rollout_*.jsonl"))
    assert [f.name for f in files] == ["rollout_0.jsonl", "rollout_1.jsonl"]

    # no --num-rollout: the number of rollouts comes from the recording
    train_flags = base_flags(tiny_qwen3, say_digit_prompts, train_dir, prompts_per_rollout=PROMPTS, num_rollout=None)
    replay = miles_train([*train_flags, "--load-debug-rollout-data", str(dumps)]).run(240)

    rows = rollout_rows(train_dir)
    assert [row["rollout_id"] for row in rows] == [0, 1]
    for rollout_id, row in enumerate(rows):
        assert row["train/step"] == rollout_id and "train/pg_loss" in row and "train/grad_norm" in row
        assert row["rollout/raw_reward"] == pytest.approx(mean(recorded_rewards(files[rollout_id])))
        assert "perf/update_weights_time" not in row
    assert not list(train_dir.glob("engine-*.log")) and not (train_dir / "router.log").exists()
    assert "EngineActor" not in replay.output()
