"""Logging during a real run: metrics.jsonl, wandb (offline), TensorBoard, eval, and ``miles plot``.

Every sink gets the namespaces users look for: ``train/`` (per optimizer step), ``rollout/`` and
``perf/`` (per rollout), and ``eval/`` when ``--eval-prompt-data`` and ``--eval-interval`` are given
(before training, then every interval and at the end).
"""

from __future__ import annotations

import subprocess

import pytest
from e2e_support import MILES, base_flags, read_rows, rollout_rows, wandb_history_keys

pytestmark = pytest.mark.e2e

EXPECTED = ("train/loss", "train/pg_loss", "train/grad_norm", "rollout/raw_reward", "rollout/response_len/mean",
            "rollout/weight_staleness", "perf/rollout_time", "perf/train_time", "perf/update_weights_time",
            "eval/digits", "eval/step")


def test_run_writes_jsonl_wandb_tensorboard_and_plot(tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    from miles_say_digit.task import write_dataset
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, tb_dir = tmp_path / "run", tmp_path / "tb"
    eval_data = write_dataset(tmp_path / "eval.jsonl", 8, seed=1)
    flags = base_flags(tiny_qwen3, say_digit_prompts, run_dir, prompts_per_rollout=4, num_rollout=4)
    flags += ["--use-wandb", "--wandb-mode", "offline", "--wandb-project", "miles-e2e", "--tensorboard-dir", str(tb_dir),
              "--eval-prompt-data", "digits", str(eval_data), "--eval-interval", "2"]
    miles_train(flags).run(300)

    rows = read_rows(run_dir)
    jsonl_keys = {key for row in rows for key in row}
    assert set(EXPECTED) <= jsonl_keys, sorted(set(EXPECTED) - jsonl_keys)
    assert [row["rollout_id"] for row in rollout_rows(run_dir)] == [0, 1, 2, 3]
    assert [row["eval/step"] for row in rows if "eval/step" in row] == [0, 1, 3]  # before training, every 2, last

    wandb_files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(wandb_files) == 1, list(run_dir.rglob("*"))
    wandb_keys = wandb_history_keys(wandb_files[0])
    assert set(EXPECTED) <= wandb_keys, sorted(set(EXPECTED) - wandb_keys)

    events = EventAccumulator(str(tb_dir))
    events.Reload()
    tb_tags = set(events.Tags()["scalars"])
    assert set(EXPECTED) - {"eval/step"} <= tb_tags, sorted(set(EXPECTED) - {"eval/step"} - tb_tags)
    assert [event.step for event in events.Scalars("train/loss")] == [0, 1, 2, 3]

    plot = subprocess.run([MILES, "plot", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert plot.returncode == 0, plot.stderr
    png = run_dir / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
