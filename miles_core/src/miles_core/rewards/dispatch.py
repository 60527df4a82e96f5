"""Scoring samples: which reward function applies to a sample, and calling it safely.

Resolution, per sample (Miles's ``async_rm``):

1. ``--custom-rm-path`` wins;
2. else ``sample.metadata["rm_type"]``, else ``--rm-type``, looked up in the ``reward_models`` registry;
3. a ``boxed_<type>`` name that no plugin registers means: replace the response by the content of its
   last ``\\boxed{}`` and apply ``<type>``.

A name nobody provides is a configuration error raised at once. A reward function that *raises* only
fails its sample: the sample becomes FAILED with the reason in ``metadata["error"]`` and the rollout
counts it. Synchronous reward functions run in a worker thread so they never block generation.

With ``--group-rm`` a whole group is scored together: a batched spec (or ``--custom-rm-path``) gets
the list of samples and answers a list of rewards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from miles_core.data.sample import Sample, SampleStatus
from miles_core.plugins.path_flags import load_path_flag
from miles_core.rewards.boxed import last_boxed_content
from miles_core.rollout.failures import mark_failed

__all__ = ["RewardTarget", "RewardDispatcher", "call_maybe_async"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RewardTarget:
    """The reward function chosen for a sample, and how to call it."""

    name: str
    fn: Callable[..., Any]
    batched: bool = False
    boxed: bool = False
    reward_key: str | None = None


async def call_maybe_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await ``fn(*args)`` when it is async; otherwise run it in a worker thread."""
    is_async_object = not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
    if inspect.iscoroutinefunction(fn) or is_async_object:
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _accepts_kwarg(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == name for p in params)


def _check_reward_value(value: Any, target: RewardTarget) -> Any:
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, dict):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return float(value.item())
    raise TypeError(f"reward {target.name!r} returned {type(value).__name__} {value!r:.80}; expected a number or a dict")


class RewardDispatcher:
    """Scores samples for one run; built once per rollout function."""

    def __init__(self, args: Any, plugin_manager: Any) -> None:
        self.args = args
        self.plugin_manager = plugin_manager
        self.custom_fn = load_path_flag(args, "custom_rm_path")
        default_type = getattr(args, "rm_type", None)
        if self.custom_fn is None and default_type:
            target = self.resolve_name(default_type)  # an unknown --rm-type fails here, before any generation
            if target.reward_key and getattr(args, "reward_key", None) is None:
                logger.info("--reward-key defaults to %r, the key of reward %r", target.reward_key, target.name)
                args.reward_key = target.reward_key
                if getattr(args, "eval_reward_key", None) is None:
                    args.eval_reward_key = target.reward_key

    # ------------------------------------------------------------------------------------ resolution

    def resolve_name(self, rm_type: str) -> RewardTarget:
        registry = self.plugin_manager.registry("reward_models")
        if rm_type in registry:
            spec = registry.get(rm_type)
            return RewardTarget(rm_type, spec.fn, spec.batched, False, spec.reward_key)
        inner = rm_type.removeprefix("boxed_")
        if rm_type.startswith("boxed_") and inner in registry:
            spec = registry.get(inner)
            return RewardTarget(rm_type, spec.fn, spec.batched, True, spec.reward_key)
        registry.get(rm_type, flag="--rm-type")  # raises the "unknown name, available: ..." error
        raise AssertionError("unreachable")

    def resolve(self, sample: Sample) -> RewardTarget:
        if self.custom_fn is not None:
            return RewardTarget("--custom-rm-path", self.custom_fn, batched=bool(getattr(self.args, "group_rm", False)))
        rm_type = (sample.metadata or {}).get("rm_type") or getattr(self.args, "rm_type", None)
        if not rm_type:
            raise ValueError(
                "no reward model is selected: set --rm-type NAME (or --custom-rm-path pkg.mod:fn, "
                "or metadata['rm_type'] per prompt)"
            )
        return self.resolve_name(rm_type)

    # ------------------------------------------------------------------------------------ scoring

    @staticmethod
    def needs_reward(sample: Sample) -> bool:
        return sample.reward is None and sample.status not in (SampleStatus.ABORTED, SampleStatus.FAILED)

    async def score_sample(self, sample: Sample, *, evaluation: bool = False) -> None:
        """Set ``sample.reward``; a raising reward marks the sample FAILED instead."""
        if not self.needs_reward(sample):
            return
        target = self.resolve(sample)
        try:
            if target.batched:
                values = await self._call_batched(target, [sample], evaluation)
                value = values[0]
            else:
                value = await self._call_one(target, sample, evaluation)
            sample.reward = _check_reward_value(value, target)
        except Exception as exc:  # noqa: BLE001 - the reason travels with the sample and is counted
            mark_failed(sample, "reward", f"reward {target.name!r} raised {type(exc).__name__}: {exc}")

    async def score_group(self, samples: list[Sample], *, evaluation: bool = False) -> None:
        """Score every sample still without a reward; batched targets get their samples in one call."""
        todo = [s for s in samples if self.needs_reward(s)]
        if not todo:
            return
        by_target: dict[RewardTarget, list[Sample]] = {}
        for sample in todo:
            by_target.setdefault(self.resolve(sample), []).append(sample)
        calls = []
        for target, group in by_target.items():
            if target.batched:
                calls.append(self._score_batch(target, group, evaluation))
            else:
                calls.extend(self.score_sample(s, evaluation=evaluation) for s in group)
        await asyncio.gather(*calls)

    async def _score_batch(self, target: RewardTarget, samples: list[Sample], evaluation: bool) -> None:
        try:
            values = await self._call_batched(target, samples, evaluation)
            checked = [_check_reward_value(v, target) for v in values]
        except Exception as exc:  # noqa: BLE001
            for sample in samples:
                mark_failed(sample, "reward", f"reward {target.name!r} raised {type(exc).__name__}: {exc}")
            return
        for sample, value in zip(samples, checked, strict=True):
            sample.reward = value

    async def _call_one(self, target: RewardTarget, sample: Sample, evaluation: bool) -> Any:
        graded = self._boxed_view(sample) if target.boxed else sample
        kwargs = {"evaluation": evaluation} if _accepts_kwarg(target.fn, "evaluation") else {}
        return await call_maybe_async(target.fn, self.args, graded, **kwargs)

    async def _call_batched(self, target: RewardTarget, samples: list[Sample], evaluation: bool) -> list[Any]:
        graded = [self._boxed_view(s) for s in samples] if target.boxed else samples
        kwargs = {"evaluation": evaluation} if _accepts_kwarg(target.fn, "evaluation") else {}
        values = await call_maybe_async(target.fn, self.args, graded, **kwargs)
        if not isinstance(values, (list, tuple)) or len(values) != len(samples):
            raise TypeError(
                f"batched reward {target.name!r} must return a list of {len(samples)} rewards, got {type(values).__name__}"
                + (f" of length {len(values)}" if isinstance(values, (list, tuple)) else "")
            )
        return list(values)

    @staticmethod
    def _boxed_view(sample: Sample) -> Sample:
        """A copy of ``sample`` whose response is the content of its last ``\\boxed{}`` (empty if none)."""
        return dataclasses.replace(sample, response=last_boxed_content(sample.response) or "")
