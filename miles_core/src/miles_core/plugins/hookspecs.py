"""The hook specifications: the whole extension surface of Miles.

Plugins implement these with ``from miles_core import hookimpl``. Every hook name starts with
``miles_``; the manager ignores other attributes and rejects a ``miles_*`` function that matches no
spec (a misspelt hook is an error, not a silent no-op).

Registration hooks yield typed specs (``miles_core.plugins.types``); the run picks one by the name
the user gave on the command line, never by load order. Option hooks let a plugin add and check its
own flags. Lifecycle hooks are called by the training loop at fixed points (they replace Miles's
``--custom-megatron-*-hook-path`` flags; those flags still work and are registered as ad-hoc plugins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import argparse

    from miles_core.data.sample import Sample
    from miles_core.plugins.types import (
        DataSourceSpec,
        EngineSpec,
        FilterSpec,
        GenerateFunctionSpec,
        LoggerSpec,
        LossEstimatorSpec,
        ModelSpec,
        RewardModelSpec,
        RolloutFunctionSpec,
        TrainBackendSpec,
    )

PROJECT_NAME = "miles"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------------
# Registration hooks: each yields specs of one kind.
# ---------------------------------------------------------------------------------------------------


@hookspec
def miles_data_sources() -> Iterable[DataSourceSpec]:
    """Register prompt data sources (selected with ``--data-source NAME``).

    Called once per process when the manager builds its registries.

    :return: an iterable of :class:`~miles_core.plugins.types.DataSourceSpec`.

    Example::

        from miles_core import hookimpl, DataSourceSpec

        class ListSource:
            def __init__(self, args): ...
            def get_samples(self, num_groups): ...
            def add_samples(self, groups): ...
            def save(self, rollout_id): ...
            def load(self, rollout_id=None): ...

        @hookimpl
        def miles_data_sources():
            yield DataSourceSpec(name="list", description="Prompts from a Python list", factory=ListSource)
    """
    yield from ()


@hookspec
def miles_generate_functions() -> Iterable[GenerateFunctionSpec]:
    """Register per-sample generate functions (selected with ``--generate-function NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.GenerateFunctionSpec`.

    Example::

        from miles_core import hookimpl, GenerateFunctionSpec

        async def echo(input):
            input.sample.response = "echo"
            return input.sample

        @hookimpl
        def miles_generate_functions():
            yield GenerateFunctionSpec(name="echo", description="Answer 'echo' without an engine", fn=echo)
    """
    yield from ()


@hookspec
def miles_rollout_functions() -> Iterable[RolloutFunctionSpec]:
    """Register whole-rollout functions (selected with ``--rollout-function NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.RolloutFunctionSpec`.

    Example::

        from miles_core import hookimpl, RolloutFunctionSpec

        class ReplayRollout:
            def __init__(self, input):          # RolloutFnConstructorInput(args, data_source)
                self.data_source = input.data_source
            def __call__(self, input):          # RolloutFnTrainInput(rollout_id, weight_version)
                ...

        @hookimpl
        def miles_rollout_functions():
            yield RolloutFunctionSpec(name="replay", description="Replay recorded groups", factory=ReplayRollout)
    """
    yield from ()


@hookspec
def miles_reward_models() -> Iterable[RewardModelSpec]:
    """Register reward models (selected with ``--rm-type NAME`` or ``metadata["rm_type"]``).

    :return: an iterable of :class:`~miles_core.plugins.types.RewardModelSpec`.

    Example::

        from miles_core import hookimpl, RewardModelSpec

        async def exact_match(args, sample, **kwargs):
            return float(sample.response.strip() == str(sample.label).strip())

        @hookimpl
        def miles_reward_models():
            yield RewardModelSpec(name="exact", description="1 if the response equals the label", fn=exact_match)
    """
    yield from ()


@hookspec
def miles_filters() -> Iterable[FilterSpec]:
    """Register filters for the dynamic-sampling, buffer or per-sample stage.

    :return: an iterable of :class:`~miles_core.plugins.types.FilterSpec`.

    Example::

        from miles_core import hookimpl, FilterSpec, DynamicFilterOutput

        def not_all_truncated(args, samples, **kwargs):
            keep = any(s.status.value != "truncated" for s in samples)
            return DynamicFilterOutput(keep=keep, reason=None if keep else "all_truncated")

        @hookimpl
        def miles_filters():
            yield FilterSpec(name="not_all_truncated", description="Drop groups where every sample hit the length cap",
                             fn=not_all_truncated, stage="dynamic_sampling")
    """
    yield from ()


@hookspec
def miles_loss_estimators() -> Iterable[LossEstimatorSpec]:
    """Register RL algorithms (selected with ``--advantage-estimator NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.LossEstimatorSpec`.

    Example::

        from miles_core import hookimpl, LossEstimatorSpec

        def reward_as_advantage(args, batch):
            batch["advantages"] = [torch.full_like(m, float(r), dtype=torch.float32)
                                   for r, m in zip(batch["rewards"], batch["loss_masks"])]
            batch["returns"] = batch["advantages"]

        @hookimpl
        def miles_loss_estimators():
            yield LossEstimatorSpec(name="vanilla_pg", description="Raw reward as the advantage",
                                    compute_advantages=reward_as_advantage)
    """
    yield from ()


@hookspec
def miles_model_specs() -> Iterable[ModelSpec]:
    """Register model architectures (matched to a checkpoint's HF config, or ``--model-spec NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.ModelSpec`.

    Example::

        from miles_core import hookimpl, ModelSpec

        @hookimpl
        def miles_model_specs():
            yield ModelSpec(name="mistral", description="Mistral dense models",
                            hf_architectures=("MistralForCausalLM",), hf_model_types=("mistral",),
                            transformer_config=mistral_transformer_config)
    """
    yield from ()


@hookspec
def miles_loggers() -> Iterable[LoggerSpec]:
    """Register metric sinks (enabled with ``--logger NAME`` or their own flag).

    :return: an iterable of :class:`~miles_core.plugins.types.LoggerSpec`.

    Example::

        from miles_core import hookimpl, LoggerSpec

        class PrintLogger:
            def __init__(self, args): ...
            def log(self, metrics, step): print(step, metrics)
            def finish(self): ...

        @hookimpl
        def miles_loggers():
            yield LoggerSpec(name="print", description="print() every metric row", factory=PrintLogger)
    """
    yield from ()


@hookspec
def miles_engines() -> Iterable[EngineSpec]:
    """Register rollout engines that speak SGLang's HTTP API (``--rollout-engine NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.EngineSpec`.

    Example::

        from miles_core import hookimpl, EngineSpec

        @hookimpl
        def miles_engines():
            yield EngineSpec(name="vllm-shim", description="vLLM behind an SGLang-compatible adapter",
                             command=lambda args, host, port, engine_index: ["my-shim", "--port", str(port)])
    """
    yield from ()


@hookspec
def miles_train_backends() -> Iterable[TrainBackendSpec]:
    """Register training backends (``--train-backend NAME``).

    :return: an iterable of :class:`~miles_core.plugins.types.TrainBackendSpec`.

    Example::

        from miles_core import hookimpl, TrainBackendSpec

        @hookimpl
        def miles_train_backends():
            yield TrainBackendSpec(name="deepspeed", description="DeepSpeed ZeRO-3 actor",
                                   actor_class="my_pkg.actor:DeepSpeedActor")
    """
    yield from ()


# ---------------------------------------------------------------------------------------------------
# Option hooks.
# ---------------------------------------------------------------------------------------------------


@hookspec
def miles_add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a plugin's own command-line flags to ``miles train``.

    Called once while the parser is built, before parsing. Put flags in an argument group named after
    the plugin so ``miles train --help`` shows where they come from.

    :param parser: the ``miles train`` parser.

    Example::

        @hookimpl
        def miles_add_arguments(parser):
            group = parser.add_argument_group("my-reward")
            group.add_argument("--my-reward-scale", type=float, default=1.0, help="Multiply the reward.")
    """


@hookspec
def miles_validate_args(args: argparse.Namespace) -> None:
    """Check and complete the parsed flags; raise ``ValueError`` with a message naming the flag.

    Called once after parsing and after the core's own checks, before any process starts.

    :param args: the parsed namespace (mutable: derived defaults may be filled in).

    Example::

        @hookimpl
        def miles_validate_args(args):
            if args.my_reward_scale <= 0:
                raise ValueError("--my-reward-scale must be positive")
    """


@hookspec
def miles_register_commands(subparsers: Any) -> None:
    """Add ``miles`` subcommands (as ``miles models create`` from ``miles-models-qwen``).

    Called when the CLI is built. Add a parser with ``subparsers.add_parser(name, help=...)`` and set
    ``func=callable(args) -> int`` on it with ``set_defaults``. Keep heavy imports inside ``func`` so
    ``miles --help`` stays fast.

    Example::

        @hookimpl
        def miles_register_commands(subparsers):
            hello = subparsers.add_parser("hello", help="Say hello")
            hello.set_defaults(func=lambda args: print("hello") or 0)
    """


# ---------------------------------------------------------------------------------------------------
# Lifecycle hooks, called by the training loop. All implementations are called; results are ignored.
# ---------------------------------------------------------------------------------------------------


@hookspec
def miles_after_rewards(args: argparse.Namespace, samples: list[Sample], evaluation: bool) -> None:
    """Adjust rewards of one scored group before filtering (reward shaping, e.g. DAPO overlong penalty).

    Called in the rollout process, once per group, after every sample of the group has a reward and
    before dynamic-sampling filters see it. Change ``sample.reward`` in place; keep the original in
    ``sample.metadata["raw_reward"]`` if later logging should show the unshaped value.

    Example::

        @hookimpl
        def miles_after_rewards(args, samples, evaluation):
            for s in samples:
                s.reward -= 0.001 * s.response_length
    """


@hookspec
def miles_after_rollout(args: argparse.Namespace, rollout_id: int, samples: list[list[Sample]]) -> None:
    """Inspect a finished rollout batch (groups of samples) before it is converted for training.

    Called in the rollout process once per training rollout.

    Example::

        @hookimpl
        def miles_after_rollout(args, rollout_id, samples):
            print(rollout_id, sum(len(g) for g in samples), "samples")
    """


@hookspec
def miles_before_log_prob(args: argparse.Namespace, model: Any, store_prefix: str) -> None:
    """Called on every train rank before each forward-only log-prob pass.

    ``store_prefix`` is ``""`` (actor), ``"ref_"`` or ``"teacher_"``. Replaces
    ``--custom-megatron-before-log-prob-hook-path``.

    Example::

        @hookimpl
        def miles_before_log_prob(args, model, store_prefix):
            model.eval()
    """


@hookspec
def miles_before_train_step(
    args: argparse.Namespace, rollout_id: int, step_id: int, model: Any, optimizer: Any, lr_scheduler: Any
) -> None:
    """Called on every train rank before each optimizer step.

    Replaces ``--custom-megatron-before-train-step-hook-path``.

    Example::

        @hookimpl
        def miles_before_train_step(args, rollout_id, step_id, model, optimizer, lr_scheduler):
            if step_id == 0:
                print("lr", lr_scheduler.get_last_lr())
    """


@hookspec
def miles_after_save(args: argparse.Namespace, rollout_id: int, checkpoint_dir: str, hf_checkpoint_dir: str | None) -> None:
    """Called on train rank 0 after each checkpoint save.

    Replaces ``--custom-megatron-post-save-hook-path``.

    Example::

        @hookimpl
        def miles_after_save(args, rollout_id, checkpoint_dir, hf_checkpoint_dir):
            print("saved", checkpoint_dir)
    """
