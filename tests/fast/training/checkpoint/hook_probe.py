"""Lifecycle hooks for the checkpoint tests (``--custom-megatron-*-hook-path``): each call appends a line
to the file named by ``$MILES_HOOK_PROBE`` so the test can see which hooks ran, where, with what."""

from __future__ import annotations

import json
import os


def _record(**fields) -> None:
    with open(os.environ["MILES_HOOK_PROBE"], "a") as out:
        out.write(json.dumps(fields) + "\n")


def before_log_prob(args, model, store_prefix):
    _record(hook="before_log_prob", store_prefix=store_prefix, pid=os.getpid())


def before_train_step(args, rollout_id, step_id, model, optimizer, lr_scheduler):
    _record(hook="before_train_step", rollout_id=rollout_id, step_id=step_id, pid=os.getpid(),
            lr=optimizer.param_groups[0]["lr"])


def after_save(args, rollout_id, checkpoint_dir, hf_checkpoint_dir):
    _record(hook="after_save", rollout_id=rollout_id, checkpoint_dir=checkpoint_dir, hf=hf_checkpoint_dir,
            pid=os.getpid())
