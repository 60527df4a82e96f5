"""``metrics.jsonl`` in the run directory: one JSON object per logged row, the source for ``miles plot``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them visible rather than dropping the row
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


class JsonlLogger:
    """Appends ``{"rollout_id": step, "time": unix_seconds, **metrics}`` to ``<run-dir>/metrics.jsonl``."""

    def __init__(self, args: Any):
        run_dir = getattr(args, "run_dir", None)
        if not run_dir:
            raise ValueError("the jsonl logger needs --run-dir")
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, metrics: dict[str, Any], step: int) -> None:
        row = {"rollout_id": step, "time": round(time.time(), 3)}
        row.update({key: _jsonable(value) for key, value in metrics.items()})
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def finish(self) -> None:
        self._file.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of a run's ``metrics.jsonl``; a malformed line is an error naming file and line."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file; is {run_dir} the --run-dir of a miles train run?")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None
    return rows
