"""Checks of the flags that shape the loop itself (``--async`` and its bounds), before any process starts.

A plugin module of the core (entry point ``loop_checks``), so the checks run where every other flag
check runs (``miles_validate_args``) and ``miles plugins`` shows who made them. What they enforce is
Miles's ``train_async.py`` contract:

- ``--async`` cannot share devices (``--colocate``): generation of rollout k+1 runs *while* the trainer
  trains on rollout k, so neither can hand its memory to the other;
- the async loop syncs weights every ``--update-weights-interval`` rollouts, so a batch can lag the
  trainer by that many versions: the interval may not exceed ``--max-weight-staleness``, and a bound of
  0 (no lag at all) is the sync loop;
- PPO's importance ratio is taken against the trainer's own log-probs, which in the async loop are not
  the policy that generated the batch: it needs ``--use-rollout-logprobs`` or ``--use-tis``
  (Miles's ``validate_async_off_policy_correction``).
"""

from __future__ import annotations

import argparse

from miles_core.plugins.hookspecs import hookimpl


@hookimpl
def miles_validate_args(args: argparse.Namespace) -> None:
    if not getattr(args, "async_mode", False):
        return
    if getattr(args, "colocate", False):
        raise ValueError(
            "--async cannot be combined with --colocate: the async loop generates rollout k+1 while rollout k "
            "trains, so engines and trainer need devices of their own. Drop --colocate (and give the engines "
            "--rollout-num-gpus), or drop --async for the colocated sync loop"
        )
    staleness = getattr(args, "max_weight_staleness", 1)
    if staleness is not None and staleness < 1:
        raise ValueError(
            f"--max-weight-staleness {staleness} with --async: the async loop trains rollout k while rollout k+1 is "
            "generated with older weights, so every batch is at least 1 version stale. Use --max-weight-staleness 1 "
            "or more, or drop --async for the on-policy sync loop"
        )
    interval = getattr(args, "update_weights_interval", 1) or 1
    if staleness is not None and interval > staleness:
        raise ValueError(
            f"--update-weights-interval {interval} is larger than --max-weight-staleness {staleness}: with --async a "
            f"batch can be generated with weights {interval} versions behind the trainer. Lower the interval to "
            f"{staleness} or raise --max-weight-staleness to {interval}"
        )
    if getattr(args, "use_critic", False) and not (getattr(args, "use_rollout_logprobs", False)
                                                   or getattr(args, "use_tis", False)):
        raise ValueError(
            f"--advantage-estimator {args.advantage_estimator} with --async needs an off-policy correction: the "
            "batch comes from older weights than the trainer's. Add --use-tis (truncated importance sampling) or "
            "--use-rollout-logprobs"
        )
