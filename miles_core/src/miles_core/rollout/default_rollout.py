"""``default`` (default ``--rollout-function``): training and eval rollouts against the router.

Built once per run from :class:`RolloutFnConstructorInput`; it resolves, and so checks before any
generation, the generate function (``--generate-function`` / ``--custom-generate-function-path``),
the reward (``--rm-type`` / ``--custom-rm-path``) and the three filters. Each call is a coroutine:

- :class:`RolloutFnTrainInput` → :func:`miles_core.rollout.train_rollout.run_train_rollout`
  (over-sampling, filters, abort, partial rollout);
- :class:`RolloutFnEvalInput` → :func:`miles_core.rollout.eval_rollout.run_eval_rollout`.

``--save-debug-rollout-data`` / ``--load-debug-rollout-data`` are handled around any rollout function
by the rollout manager (:mod:`miles_core.rollout.debug_data`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import RolloutFunctionSpec
from miles_core.rollout.rollout_types import (
    RolloutFnConstructorInput,
    RolloutFnEvalInput,
    RolloutFnEvalOutput,
    RolloutFnTrainInput,
    RolloutFnTrainOutput,
)

__all__ = ["DefaultRollout"]


class DefaultRollout:
    """The built-in rollout function (see the module docstring)."""

    def __init__(self, input: RolloutFnConstructorInput) -> None:
        from miles_core.filters.selection import resolve_filter
        from miles_core.rewards.dispatch import RewardDispatcher
        from miles_core.rollout.generate_and_reward import RolloutParts, resolve_generate_fn

        args = input.args
        plugin_manager = input.plugin_manager
        if plugin_manager is None:
            from miles_core.plugins.manager import plugin_manager_from_args

            plugin_manager = plugin_manager_from_args(args)
        self.args = args
        self.data_source = input.data_source
        if getattr(self.data_source, "plugin_manager", False) is None:
            self.data_source.plugin_manager = plugin_manager  # its buffer filter comes from the same registries
        resolve_filter(args, plugin_manager, "buffer")  # an unknown --buffer-filter fails now, not mid-run
        self.parts = RolloutParts(
            args=args,
            plugin_manager=plugin_manager,
            generate_fn=resolve_generate_fn(args, plugin_manager),
            rewards=RewardDispatcher(args, plugin_manager),
            dynamic_filter=resolve_filter(args, plugin_manager, "dynamic_sampling"),
            sample_filter=resolve_filter(args, plugin_manager, "sample"),
        )
        self.router_url: str | None = None  # None: --sglang-router-ip/--sglang-router-port
        self._tokenizer: Any = None
        self._eval_datasets: list | None = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from miles_core.data.tokenization import load_tokenizer

            self._tokenizer = load_tokenizer(self.args.hf_checkpoint)
        return self._tokenizer

    async def __call__(self, input: RolloutFnTrainInput | RolloutFnEvalInput) -> RolloutFnTrainOutput | RolloutFnEvalOutput:
        if isinstance(input, RolloutFnEvalInput):
            return await self.evaluate(input)
        if isinstance(input, RolloutFnTrainInput):
            return await self.train(input)
        raise TypeError(f"the default rollout takes RolloutFnTrainInput or RolloutFnEvalInput, got {type(input).__name__}")

    async def train(self, input: RolloutFnTrainInput) -> RolloutFnTrainOutput:
        from miles_core.rollout.generate_types import GenerateState
        from miles_core.rollout.train_rollout import run_train_rollout

        state = GenerateState.create(self.args, tokenizer=self.tokenizer, router_url=self.router_url)
        try:
            return await run_train_rollout(self.parts, self.data_source, state, input.rollout_id)
        finally:
            await state.aclose()

    async def evaluate(self, input: RolloutFnEvalInput) -> RolloutFnEvalOutput:
        from miles_core.rollout.eval_rollout import load_eval_datasets, run_eval_rollout
        from miles_core.rollout.generate_types import GenerateState

        if self._eval_datasets is None:
            self._eval_datasets = load_eval_datasets(self.args)
        if not self._eval_datasets:
            raise ValueError("an eval rollout was requested but --eval-prompt-data names no dataset")
        state = GenerateState.create(self.args, tokenizer=self.tokenizer, router_url=self.router_url, evaluation=True)
        try:
            return await run_eval_rollout(self.parts, self._eval_datasets, state)
        finally:
            await state.aclose()


@hookimpl
def miles_rollout_functions() -> Iterable[RolloutFunctionSpec]:
    yield RolloutFunctionSpec(name="default", description="Over-sampled, filtered rollouts and evals through the router",
                              factory=DefaultRollout)


@hookimpl
def miles_add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("default_rollout")
    group.add_argument("--over-sampling-max-rounds", type=int, default=10,
                       help="At most this many fetches of --over-sampling-batch-size prompt groups per rollout; when "
                            "the filters still leave fewer than --rollout-batch-size groups, the rollout warns with the "
                            "counts and returns the groups it has.")


@hookimpl
def miles_validate_args(args: Any) -> None:
    rounds = getattr(args, "over_sampling_max_rounds", None)
    if rounds is not None and rounds < 1:
        raise ValueError(f"--over-sampling-max-rounds must be at least 1, got {rounds}")
