"""The structured stdout row, one per logged rollout (``--log-interval``).

A row shows the signals the monitoring guide says to watch (reward, loss, KL, clip fraction,
entropy, grad norm, timings) in a fixed order, then nothing else: the full set of metrics goes to
the JSONL file, wandb and TensorBoard.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

# (metric key, short label, format) in display order; a key missing from a row is skipped.
ROW_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("rollout/raw_reward", "reward", "{:.3f}"),
    ("rollout/generated/raw_reward", "reward_all", "{:.3f}"),
    ("train/loss", "loss", "{:.4f}"),
    ("train/pg_loss", "pg", "{:.4f}"),
    ("train/kl_loss", "kl", "{:.4f}"),
    ("train/ppo_kl", "ppo_kl", "{:.2e}"),
    ("train/pg_clipfrac", "clipfrac", "{:.3f}"),
    ("train/entropy_loss", "entropy", "{:.3f}"),
    ("train/grad_norm", "grad_norm", "{:.3f}"),
    ("rollout/response_len/mean", "resp_len", "{:.1f}"),
    ("rollout/truncated_ratio", "truncated", "{:.2f}"),
    ("perf/rollout_time", "rollout_s", "{:.2f}"),
    ("perf/train_time", "train_s", "{:.2f}"),
    ("perf/update_weights_time", "sync_s", "{:.2f}"),
)


def format_row(rollout_id: int, metrics: dict[str, Any]) -> str:
    parts = [f"rollout {rollout_id}"]
    for key, label, fmt in ROW_FIELDS:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label}={fmt.format(value)}")
    for key in sorted(k for k in metrics if k.startswith("eval/") and k.count("/") == 1):
        value = metrics[key]
        if isinstance(value, (int, float)):
            parts.append(f"{key}={value:.3f}")
    return " | ".join(parts)


class StdoutLogger:
    """Prints :func:`format_row` every ``--log-interval`` rollouts."""

    def __init__(self, args: Any, stream: TextIO | None = None):
        self.interval = max(1, int(getattr(args, "log_interval", 1) or 1))
        self.stream = stream or sys.stdout

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if step % self.interval == 0 or any(k.startswith("eval/") for k in metrics):
            print(format_row(step, metrics), file=self.stream, flush=True)

    def finish(self) -> None:
        self.stream.flush()
