"""One training rollout with over-sampling and filters (Miles's ``generate_rollout_async``).

1. Fetch ``--over-sampling-batch-size`` prompt groups whenever the groups kept plus the groups in
   flight fall below ``--rollout-batch-size``; one fetch is a *round*, at most
   ``--over-sampling-max-rounds`` of them (then a warning with the counts, and the rollout returns
   what it has).
2. As each group finishes: a group with a FAILED sample is dropped (failures counted by kind); a
   group with an ABORTED sample goes back to the data source with ``--partial-rollout`` (else it is
   dropped); otherwise ``miles_after_rewards`` shapes its rewards, the dynamic-sampling filter keeps or
   drops it (``rollout/dynamic_filter/drop_<reason>``), and kept groups fill the batch.
3. Once the batch is full, every worker aborts its requests; the groups still in flight come back
   aborted (to the buffer with ``--partial-rollout``) or complete (discarded as beyond the target).
4. The kept groups, in prompt order, pass the per-sample filter (``remove_sample``), then
   ``miles_after_rollout`` sees them.

If no sample of the rollout succeeds, the rollout stops with the first error, since every further
round would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from collections import Counter
from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.filters.dynamic import DropCounter, call_dynamic_filter
from miles_core.rewards.value import raw_reward_value
from miles_core.rollout.abort import abort_all_workers
from miles_core.rollout.failures import RolloutFailedError, failure_kind
from miles_core.rollout.generate_and_reward import RolloutParts, generate_and_reward_group
from miles_core.rollout.generate_types import GenerateState
from miles_core.rollout.rollout_metrics import (
    pass_at_k_metrics,
    sample_metrics,
    weight_version_metrics,
    zero_std_metrics,
)
from miles_core.rollout.rollout_types import RolloutFnTrainOutput

__all__ = ["run_train_rollout", "RolloutFailedError", "rollout_batch_metrics"]

logger = logging.getLogger(__name__)


def rollout_batch_metrics(args: Any, groups: list[list[Sample]]) -> dict[str, float]:
    """The sample-level metrics of the groups a rollout returns (shared with replayed debug rollouts)."""
    flat = [s for g in groups for s in g]
    metrics = sample_metrics(args, flat)
    metrics.update(zero_std_metrics(args, groups))
    metrics.update(weight_version_metrics(flat))
    if getattr(args, "log_passrate", False):
        metrics.update(pass_at_k_metrics(args, groups))
    return metrics


class _TrainRollout:
    """The bookkeeping of one training rollout (see the module docstring)."""

    def __init__(self, parts: RolloutParts, data_source: Any, state: GenerateState, rollout_id: int) -> None:
        self.parts, self.args = parts, parts.args
        self.data_source, self.state, self.rollout_id = data_source, state, rollout_id
        self.target = int(self.args.rollout_batch_size)
        self.batch_size = int(getattr(self.args, "over_sampling_batch_size", None) or self.target)
        self.max_rounds = int(getattr(self.args, "over_sampling_max_rounds", None) or 10)
        self.kept: list[list[Sample]] = []
        self.pending: set[asyncio.Task] = set()
        self.to_buffer: list[list[Sample]] = []
        self.rounds = 0
        self.groups_finished = 0
        self.ok_samples = 0
        self.generated_rewards: list[float] = []  # every scored sample, kept or dropped by a filter
        self.failed_samples: Counter[str] = Counter()
        self.first_error: str | None = None
        self.dynamic_drops = DropCounter("rollout/dynamic_filter")
        self.other_drops = DropCounter("rollout/dropped_groups")
        self.progress = None

    async def run(self) -> RolloutFnTrainOutput:
        from tqdm import tqdm

        start = time.perf_counter()
        n = int(self.args.n_samples_per_prompt)
        self.progress = tqdm(total=self.target * n, desc=f"rollout {self.rollout_id}", unit="sample",
                             disable=not sys.stderr.isatty(), leave=False)
        try:
            await self._fill()
            if len(self.kept) < self.target:
                logger.warning(
                    "rollout %d: only %d of %d groups (--rollout-batch-size) survived after %d over-sampling rounds "
                    "(--over-sampling-max-rounds %d; drops: %s); training on what there is",
                    self.rollout_id, len(self.kept), self.target, self.rounds, self.max_rounds,
                    dict(self.dynamic_drops.counts + self.other_drops.counts) or "none",
                )
            await self._finish_leftovers()
        except BaseException:
            await self._cancel()
            raise
        finally:
            self.progress.close()
        self._check_not_all_failed(final=True)

        if self.to_buffer:
            for group in self.to_buffer:
                for sample in group:
                    sample.metadata.setdefault("start_rollout_id", self.rollout_id)
            self.data_source.add_samples(self.to_buffer)
        self.kept.sort(key=lambda group: min((s.index if s.index is not None else 0) for s in group))
        removed = self._apply_sample_filter()
        self.parts.plugin_manager.hook.miles_after_rollout(args=self.args, rollout_id=self.rollout_id, samples=self.kept)
        return RolloutFnTrainOutput(samples=self.kept, metrics=self._metrics(removed, time.perf_counter() - start))

    async def _fill(self) -> None:
        exhausted = False
        while len(self.kept) < self.target:
            while not exhausted and len(self.kept) + len(self.pending) < self.target and self.rounds < self.max_rounds:
                groups = self.data_source.get_samples(self.batch_size)
                self.rounds += 1
                if not groups:
                    exhausted = True
                    logger.warning("rollout %d: the data source returned no groups", self.rollout_id)
                    break
                for group in groups:
                    self.pending.add(asyncio.create_task(generate_and_reward_group(self.parts, self.state, group)))
            if not self.pending:
                break
            done, self.pending = await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                self._process(task.result())
            self._check_not_all_failed(final=False)

    async def _finish_leftovers(self) -> None:
        self.state.aborted = True
        if not self.pending:
            return
        reached = await abort_all_workers(self.state.client, self.state.router_url)
        logger.info("rollout %d: batch full; aborting %d in-flight groups on %d workers",
                    self.rollout_id, len(self.pending), reached)
        finished = await asyncio.gather(*self.pending)
        self.pending = set()
        for group in finished:
            self._process(group)

    async def _cancel(self) -> None:
        self.state.aborted = True
        pending, self.pending = self.pending, set()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _process(self, group: list[Sample]) -> None:
        """Sort one finished group into kept / buffered / dropped, counting why."""
        self.groups_finished += 1
        failed = [s for s in group if s.status == SampleStatus.FAILED]
        if failed:
            for sample in failed:
                self.failed_samples[failure_kind(sample)] += 1
                if self.first_error is None:
                    self.first_error = str(sample.metadata.get("error"))
            self.ok_samples += len(group) - len(failed)
            self.other_drops.add("has_failed_sample")
            return
        if any(s.status == SampleStatus.ABORTED for s in group):
            if getattr(self.args, "partial_rollout", False) and len(group) == int(self.args.n_samples_per_prompt):
                self.to_buffer.append(group)
            else:
                self.other_drops.add("aborted")
            return
        self.ok_samples += len(group)
        self.generated_rewards += [raw_reward_value(self.args, s) for s in group if s.reward is not None]
        self.parts.plugin_manager.hook.miles_after_rewards(args=self.args, samples=group, evaluation=False)
        verdict = call_dynamic_filter(self.parts.dynamic_filter, self.args, group)
        if not verdict.keep:
            self.dynamic_drops.add(verdict.reason)
        elif len(self.kept) >= self.target:
            self.other_drops.add("over_target")
        else:
            self.kept.append(group)
            self.progress.update(len(group))

    def _check_not_all_failed(self, *, final: bool) -> None:
        failed = sum(self.failed_samples.values())
        if self.ok_samples or not failed:
            return
        if final or failed >= self.target * int(self.args.n_samples_per_prompt):
            raise RolloutFailedError(
                f"rollout {self.rollout_id}: all {failed} finished samples failed "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(self.failed_samples.items()))}); first error: {self.first_error}"
            )

    def _apply_sample_filter(self) -> int:
        if self.parts.sample_filter is None or not self.kept:
            return 0
        before = sum(s.remove_sample for g in self.kept for s in g)
        self.parts.sample_filter(self.args, self.kept)
        return sum(s.remove_sample for g in self.kept for s in g) - before

    def _metrics(self, removed: int, elapsed: float) -> dict[str, float]:
        metrics: dict[str, float] = {
            "rollout/over_sampling/rounds": float(self.rounds),
            "rollout/over_sampling/groups_finished": float(self.groups_finished),
            "rollout/groups_kept": float(len(self.kept)),
            "rollout/partial_rollout/groups_to_buffer": float(len(self.to_buffer)),
            "rollout/sample_filter/removed": float(removed),
            "perf/rollout_time": elapsed,
        }
        metrics.update(self.dynamic_drops.metrics(name_prefix="drop_"))
        metrics.update(self.other_drops.metrics())
        metrics.update({f"rollout/failed/{kind}": float(n) for kind, n in sorted(self.failed_samples.items())})
        metrics.update(rollout_batch_metrics(self.args, self.kept))
        if self.generated_rewards:
            # The policy's own score: with dynamic sampling, rollout/raw_reward only covers the kept groups.
            metrics["rollout/generated/raw_reward"] = float(statistics.fmean(self.generated_rewards))
        if hasattr(self.data_source, "metrics"):
            metrics.update(self.data_source.metrics())
        return metrics


async def run_train_rollout(parts: RolloutParts, data_source: Any, state: GenerateState, rollout_id: int) -> RolloutFnTrainOutput:
    """Run one training rollout (see the module docstring)."""
    return await _TrainRollout(parts, data_source, state, rollout_id).run()
