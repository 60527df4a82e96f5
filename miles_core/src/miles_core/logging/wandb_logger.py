"""Weights & Biases (``--use-wandb``), with Miles's namespaces and step axes; offline mode needs no network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from miles_core.logging.namespaces import NAMESPACES, STEP_KEYS, namespace_of


class WandbLogger:
    """One wandb run per training run, created in the driver.

    ``--wandb-mode offline`` (or ``WANDB_MODE=offline``) writes ``<dir>/wandb/offline-run-*`` for a later
    ``wandb sync``. wandb's own cache and config dirs are pointed into the run directory unless the user
    set them, so nothing lands under the home directory.
    """

    def __init__(self, args: Any):
        import wandb

        run_dir = Path(getattr(args, "wandb_dir", None) or getattr(args, "run_dir", None) or ".")
        run_dir.mkdir(parents=True, exist_ok=True)
        for var, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")):
            os.environ.setdefault(var, str(run_dir / "wandb-home" / sub))
        mode = getattr(args, "wandb_mode", None) or os.environ.get("WANDB_MODE") or "online"
        config = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None), list))}
        self.run = wandb.init(
            project=getattr(args, "wandb_project", None) or "miles",
            group=getattr(args, "wandb_group", None),
            name=getattr(args, "run_name", None),
            dir=str(run_dir),
            mode=mode,
            config=config,
            reinit="finish_previous",
        )
        for step_key in sorted(set(STEP_KEYS.values())):
            self.run.define_metric(step_key)
        for namespace in NAMESPACES:
            self.run.define_metric(f"{namespace}/*", step_metric=STEP_KEYS[namespace])

    def log(self, metrics: dict[str, Any], step: int) -> None:
        row = dict(metrics)
        namespaces = {namespace_of(key) for key in row}
        for namespace in namespaces:
            row.setdefault(STEP_KEYS[namespace], step)
        self.run.log(row)

    def finish(self) -> None:
        self.run.finish()
