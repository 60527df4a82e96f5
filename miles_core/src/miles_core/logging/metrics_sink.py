"""Fan-out of metric rows to every enabled logger.

Enabled loggers are those whose spec's ``enabled_by(args)`` says so (stdout and JSONL always; wandb with
``--use-wandb``; TensorBoard with ``--tensorboard-dir``) plus every name given with ``--logger``. A
logger that raises while logging is reported once and dropped, so a flaky sink never kills a run.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class MetricsSink:
    def __init__(self, args: Any, plugin_manager: Any):
        registry = plugin_manager.registry("loggers")
        names = [spec.name for spec in registry if spec.enabled_by is not None and spec.enabled_by(args)]
        for name in getattr(args, "logger", None) or []:
            registry.get(name, flag="--logger")
            if name not in names:
                names.append(name)
        self.names = names
        self.loggers = {name: registry.get(name).factory(args) for name in names}

    def log(self, metrics: dict[str, Any], step: int) -> None:
        for name, sink in list(self.loggers.items()):
            try:
                sink.log(metrics, step)
            except Exception as exc:  # a sink must never stop training
                logger.error("logger %r failed (%s: %s) and is disabled for the rest of the run", name, type(exc).__name__, exc)
                self.loggers.pop(name)

    def finish(self) -> None:
        for name, sink in self.loggers.items():
            try:
                sink.finish()
            except Exception as exc:
                logger.error("logger %r failed to finish: %s", name, exc)
