"""Generating and scoring one sample or one group (Miles's ``generate_and_rm`` / ``generate_and_rm_group``).

Per sample: a sample already COMPLETED or TRUNCATED (handed back by a partial rollout) is not generated
again; otherwise the generate function runs under the state's semaphore, with the sampling parameters
of the rollout plus a per-sample ``sampling_seed`` derived from ``--rollout-seed`` and the sample's
index. With ``--opd-teacher-url`` the teacher scores the generated tokens (``teacher_log_probs``, see
``teacher.py``). Without ``--group-rm`` the sample is scored right after; aborted and failed samples get no reward.
Per group: the samples run concurrently; with ``--group-rm`` the group is scored together afterwards.
A generate function that raises fails its sample (FAILED, reason in ``metadata["error"]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.plugins.path_flags import load_path_flag
from miles_core.rewards.dispatch import RewardDispatcher
from miles_core.rollout.failures import mark_failed
from miles_core.rollout.generate_types import GenerateFnInput, GenerateState, call_generate_fn
from miles_core.rollout.http_post import GenerateRequestError
from miles_core.rollout.sampling_params import sample_seed
from miles_core.rollout.teacher import TeacherMismatchError, score_with_teacher

__all__ = ["RolloutParts", "resolve_generate_fn", "generate_and_reward", "generate_and_reward_group"]


@dataclass
class RolloutParts:
    """The functions a rollout is made of, resolved once from the flags and the registries."""

    args: Any
    plugin_manager: Any
    generate_fn: Callable[..., Any]
    rewards: RewardDispatcher
    dynamic_filter: Callable[..., Any] | None = None
    sample_filter: Callable[..., Any] | None = None


def resolve_generate_fn(args: Any, plugin_manager: Any) -> Callable[..., Any]:
    """``--custom-generate-function-path`` if set, else the ``--generate-function`` spec (default ``single_turn``)."""
    custom = load_path_flag(args, "custom_generate_function_path")
    if custom is not None:
        return custom() if isinstance(custom, type) else custom
    name = getattr(args, "generate_function", None) or "single_turn"
    return plugin_manager.get("generate_functions", name, flag="--generate-function").fn


async def generate_and_reward(parts: RolloutParts, state: GenerateState, sample: Sample, *, evaluation: bool = False,
                              seed_salt: str = "") -> list[Sample]:
    """Generate (unless already done) and score one sample; a list when the generate function split it."""
    args = parts.args
    if sample.status in (SampleStatus.COMPLETED, SampleStatus.TRUNCATED):
        samples = [sample]
    else:
        async with state.semaphore:
            if state.aborted:
                sample.status = SampleStatus.ABORTED
                return [sample]
            params = dict(state.sampling_params)
            params["sampling_seed"] = sample_seed(int(getattr(args, "rollout_seed", 0) or 0), sample.index, salt=seed_salt)
            fn_input = GenerateFnInput(args=args, state=state, sample=sample, sampling_params=params, evaluation=evaluation)
            try:
                samples = await call_generate_fn(parts.generate_fn, fn_input)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken generate call fails its sample, counted by the rollout
                mark_failed(sample, "generate", f"generate function raised {type(exc).__name__}: {exc}")
                samples = [sample]
    if getattr(args, "opd_teacher_url", None) and not evaluation:
        try:
            await score_with_teacher(state, samples)
        except (GenerateRequestError, TeacherMismatchError) as exc:
            for failed in samples:
                mark_failed(failed, "teacher", str(exc))
    if not getattr(args, "group_rm", False):
        await parts.rewards.score_group(samples, evaluation=evaluation)
    return samples


async def generate_and_reward_group(parts: RolloutParts, state: GenerateState, group: list[Sample], *,
                                    evaluation: bool = False, seed_salt: str = "") -> list[Sample]:
    """Generate and score a prompt group; the flattened samples (a split sample adds siblings)."""
    results = await asyncio.gather(
        *(generate_and_reward(parts, state, sample, evaluation=evaluation, seed_salt=seed_salt) for sample in group)
    )
    samples = [s for result in results for s in result]
    if getattr(parts.args, "group_rm", False):
        await parts.rewards.score_group(samples, evaluation=evaluation)
    return samples
