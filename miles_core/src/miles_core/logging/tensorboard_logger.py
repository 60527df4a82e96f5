"""TensorBoard event files under ``--tensorboard-dir``, each metric against its namespace's step."""

from __future__ import annotations

from typing import Any

from miles_core.logging.namespaces import step_key_of


class TensorboardLogger:
    def __init__(self, args: Any):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=args.tensorboard_dir)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        for key, value in metrics.items():
            if key in ("train/step", "rollout/step", "eval/step") or not isinstance(value, (int, float)):
                continue
            global_step = metrics.get(step_key_of(key), step)
            self.writer.add_scalar(key, value, global_step=int(global_step))
        self.writer.flush()

    def finish(self) -> None:
        self.writer.close()
