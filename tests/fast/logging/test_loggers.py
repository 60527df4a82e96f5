"""The built-in loggers: stdout row, metrics.jsonl, TensorBoard and wandb offline files, and ``miles plot``."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from miles_core.logging.jsonl_logger import JsonlLogger, read_metrics
from miles_core.logging.metrics_sink import MetricsSink
from miles_core.logging.namespaces import namespace_of, step_key_of
from miles_core.logging.plot import plot_run
from miles_core.logging.stdout_logger import StdoutLogger, format_row
from miles_core.plugins.manager import build_plugin_manager, PluginSelection


def _args(tmp_path, **overrides):
    values = dict(run_dir=str(tmp_path / "run"), log_interval=1, use_wandb=False, tensorboard_dir=None, logger=[],
                  wandb_project="miles-test", wandb_group=None, wandb_dir=None, wandb_mode="offline", run_name=None)
    values.update(overrides)
    return argparse.Namespace(**values)


def test_namespaces_and_step_axes():
    assert namespace_of("train/loss") == "train"
    assert step_key_of("train/loss") == "train/step"
    assert step_key_of("perf/rollout_time") == "rollout/step"
    assert step_key_of("eval/gsm8k") == "eval/step"
    assert namespace_of("raw_reward") == "rollout"


def test_stdout_row_shows_watched_signals_in_order():
    row = format_row(3, {"train/loss": -0.0123, "rollout/raw_reward": 0.5, "perf/rollout_time": 1.234,
                         "eval/gsm8k": 0.25, "train/unlisted": 9.0})
    assert row == "rollout 3 | reward=0.500 | loss=-0.0123 | rollout_s=1.23 | eval/gsm8k=0.250"


def test_stdout_logger_honours_log_interval(tmp_path):
    stream = io.StringIO()
    sink = StdoutLogger(_args(tmp_path, log_interval=2), stream=stream)
    for step in range(4):
        sink.log({"rollout/raw_reward": step / 10}, step)
    assert [line.split(" |")[0] for line in stream.getvalue().splitlines()] == ["rollout 0", "rollout 2"]


def test_jsonl_logger_round_trip_and_nan(tmp_path):
    sink = JsonlLogger(_args(tmp_path))
    sink.log({"rollout/raw_reward": 0.25, "train/loss": float("nan")}, 0)
    sink.log({"rollout/raw_reward": 0.75}, 1)
    sink.finish()
    rows = read_metrics(tmp_path / "run")
    assert [r["rollout/raw_reward"] for r in rows] == [0.25, 0.75]
    assert rows[0]["train/loss"] == "nan"


def test_read_metrics_names_bad_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"rollout_id": 0}\n{oops\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not valid JSON"):
        read_metrics(run)


def test_plot_writes_png(tmp_path):
    sink = JsonlLogger(_args(tmp_path))
    for step in range(5):
        sink.log({"rollout/raw_reward": step / 5, "train/loss": 1 - step / 5, "perf/rollout_time": 1.0}, step)
    sink.finish()
    png = plot_run(tmp_path / "run")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sink_enables_tensorboard_and_wandb_offline(tmp_path):
    pm = build_plugin_manager(PluginSelection(autoload=False))
    args = _args(tmp_path, use_wandb=True, tensorboard_dir=str(tmp_path / "tb"), wandb_dir=str(tmp_path / "wb"))
    sink = MetricsSink(args, pm)
    assert sink.names == ["stdout", "jsonl", "wandb", "tensorboard"]
    sink.log({"rollout/raw_reward": 0.5, "perf/rollout_time": 1.0}, 0)
    sink.log({"train/loss": 0.1, "train/step": 0}, 0)
    sink.finish()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    offline_runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert {"rollout/raw_reward", "perf/rollout_time", "train/loss"} <= set(acc.Tags()["scalars"])


def test_unknown_logger_name_lists_available(tmp_path):
    pm = build_plugin_manager(PluginSelection(autoload=False))
    with pytest.raises(ValueError, match=r"unknown --logger 'mlflow'. Available: jsonl, stdout, tensorboard, wandb"):
        MetricsSink(_args(tmp_path, logger=["mlflow"]), pm)
