"""Files of the run directory the loop itself writes or rewrites: the config, and metrics on resume.

A resumed run (``--load``) starts at the rollout after the last checkpoint, but the interrupted run may
have logged a few rollouts past that checkpoint before it died. Those rows are *superseded*: the
resumed run logs the same rollout ids again. :func:`supersede_metrics` moves them out of
``metrics.jsonl`` (into ``metrics.superseded.jsonl``, nothing is deleted), so the file holds one
continuous curve and ``miles plot`` draws it without a fold-back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("miles.loop")

__all__ = ["write_run_config", "supersede_metrics", "count_saved_rollouts"]

METRICS_FILE = "metrics.jsonl"
SUPERSEDED_FILE = "metrics.superseded.jsonl"


def write_run_config(args: Any, run_dir: Path) -> None:
    """``config.json``: every flag of the run with a JSON value (what the run was started with)."""
    config = {k: v for k, v in sorted(vars(args).items())
              if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")


def supersede_metrics(run_dir: Path, start_rollout_id: int) -> int:
    """Move rows of rollouts ``>= start_rollout_id`` out of ``metrics.jsonl``; returns how many moved."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return 0
    kept, moved = [], []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            rollout_id = json.loads(line).get("rollout_id")
        except (json.JSONDecodeError, AttributeError):
            rollout_id = None
        (moved if isinstance(rollout_id, int) and rollout_id >= start_rollout_id else kept).append(line)
    if not moved:
        return 0
    with (run_dir / SUPERSEDED_FILE).open("a", encoding="utf-8") as out:
        out.writelines(moved)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
    logger.warning("resuming at rollout %d: %d row(s) the interrupted run logged after its last checkpoint moved "
                   "to %s", start_rollout_id, len(moved), run_dir / SUPERSEDED_FILE)
    return len(moved)


def count_saved_rollouts(template: str, start: int = 0) -> int:
    """How many consecutive rollouts from id 0 a ``--load-debug-rollout-data`` template has on disk."""
    from miles_core.rollout.debug_data import debug_data_path

    rollout_id = start
    while debug_data_path(template, rollout_id).is_file():
        rollout_id += 1
    if rollout_id == 0:
        raise FileNotFoundError(
            f"--load-debug-rollout-data {template!r}: no saved rollout at {debug_data_path(template, 0)}; "
            "record some with --save-debug-rollout-data first (or pass --num-rollout)"
        )
    return rollout_id
