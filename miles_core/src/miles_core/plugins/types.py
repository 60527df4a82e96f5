"""Spec dataclasses yielded by the registration hooks.

Every registration hook (``miles_reward_models``, ``miles_filters``, ...) yields instances of one of
these frozen dataclasses. A spec carries a *function or factory*, never a live object with side
effects: the manager collects every spec from every plugin, and the run picks the one the user named
(``--rm-type math``), so nothing depends on load order (conda's ``CondaSolver`` pattern).

The call signatures documented on each spec follow Miles's ``--*-path`` contracts, so a function
written for Miles's ``--custom-rm-path`` can be registered as a ``RewardModelSpec`` unchanged.

The manager stamps each collected spec with its :class:`Provenance` (which entry point, distribution
and version gave it), so listings and errors can name the package to install or remove.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Provenance",
    "DataSourceSpec",
    "GenerateFunctionSpec",
    "RolloutFunctionSpec",
    "RewardModelSpec",
    "FilterSpec",
    "FilterStage",
    "DynamicFilterOutput",
    "LossEstimatorSpec",
    "ModelSpec",
    "LoggerSpec",
    "EngineSpec",
    "TrainBackendSpec",
    "SPEC_TYPES",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Provenance:
    """Where a spec came from: the plugin (entry point or module) and its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''} (plugin {self.plugin!r})".replace("  ", " ")
        return f"plugin {self.plugin!r}"


@dataclass(frozen=True)
class _Spec:
    """Common fields: a selectable ``name`` and a one-line ``description``."""

    name: str
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"{type(self).__name__}.name must be a non-empty string of letters, digits, '_', '-' or '.';"
                f" got {self.name!r}"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"{type(self).__name__} {self.name!r} needs a one-line description")
        if "\n" in self.description.strip():
            raise ValueError(f"{type(self).__name__} {self.name!r}: description must be one line")

    def _require_callable(self, attr: str) -> None:
        value = getattr(self, attr)
        if not callable(value):
            raise TypeError(f"{type(self).__name__} {self.name!r}: {attr} must be callable, got {value!r}")

    def _require_callable_or_none(self, *attrs: str) -> None:
        for attr in attrs:
            value = getattr(self, attr)
            if value is not None and not callable(value):
                raise TypeError(f"{type(self).__name__} {self.name!r}: {attr} must be callable or None, got {value!r}")


@dataclass(frozen=True)
class DataSourceSpec(_Spec):
    """A prompt data source, selected with ``--data-source NAME`` (default ``jsonl``).

    ``factory(args) -> DataSource``, where a DataSource implements (Miles's ``--data-source-path``):

    - ``get_samples(num_groups: int) -> list[list[Sample]]``: the next groups of
      ``n_samples_per_prompt`` samples each (buffered groups first);
    - ``add_samples(groups: list[list[Sample]]) -> None``: hand groups back (partial rollout);
    - ``save(rollout_id: int) -> None`` / ``load(rollout_id: int | None = None) -> None``: persist and
      restore the position under ``--save`` / ``--load``;
    - optional ``get_buffer_length() -> int`` and ``close() -> None``.
    """

    factory: Callable[..., Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("factory")


@dataclass(frozen=True)
class GenerateFunctionSpec(_Spec):
    """How one sample is generated, selected with ``--generate-function NAME`` (default ``single_turn``).

    ``fn`` is ``async def generate(input: GenerateFnInput) -> Sample | list[Sample]`` where
    ``GenerateFnInput(args, state, sample, sampling_params, evaluation)`` (Miles's class-based form; the
    legacy ``generate(args, sample, sampling_params, evaluation=False)`` form is adapted on load).
    It fills ``tokens``, ``response``, ``response_length``, ``rollout_log_probs``, optionally
    ``loss_mask``, and ``status``. A returned list means one trajectory gave several training samples.
    """

    fn: Callable[..., Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("fn")


@dataclass(frozen=True)
class RolloutFunctionSpec(_Spec):
    """A whole rollout, selected with ``--rollout-function NAME`` (default ``default``).

    ``factory(RolloutFnConstructorInput(args, data_source))`` returns a callable taking
    ``RolloutFnTrainInput(rollout_id, weight_version)`` or ``RolloutFnEvalInput(rollout_id, weight_version)``
    and returning ``RolloutFnTrainOutput(samples: list[list[Sample]], metrics)`` or
    ``RolloutFnEvalOutput(data: {name: {"rewards", "truncated", "samples"}}, metrics)``; the call may be
    sync or async. A legacy ``fn(args, rollout_id, data_source, evaluation=False)`` is adapted on load.
    """

    factory: Callable[..., Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("factory")


@dataclass(frozen=True)
class RewardModelSpec(_Spec):
    """A reward, selected with ``--rm-type NAME`` (or per sample by ``metadata["rm_type"]``).

    Per sample (``batched=False``): ``async def rm(args, sample, **kwargs) -> float | dict``.
    Batched (``batched=True``, used with ``--group-rm``): ``async def rm(args, samples, **kwargs) -> list``.
    A plain (non-async) function is accepted and run in a worker thread.
    A dict result needs ``--reward-key`` to pick the scalar; ``reward_key`` is the default for this
    reward when the user gives none (e.g. ``"score"`` for ``dapo``).
    """

    fn: Callable[..., Any] = None  # type: ignore[assignment]
    batched: bool = False
    reward_key: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("fn")


FilterStage = Literal["dynamic_sampling", "buffer", "sample"]


@dataclass(frozen=True)
class DynamicFilterOutput:
    """What a dynamic-sampling filter answers for one group (Miles's ``DynamicFilterOutput``)."""

    keep: bool
    reason: str | None = None


@dataclass(frozen=True)
class FilterSpec(_Spec):
    """A filter for one of the three stages of a rollout.

    - ``stage="dynamic_sampling"`` (``--dynamic-sampling-filter NAME``): per completed group, after scoring:
      ``fn(args, samples: list[Sample], **kwargs) -> DynamicFilterOutput | bool``; a dropped group is
      counted under ``rollout/dynamic_filter/drop_<reason>``.
    - ``stage="buffer"`` (``--buffer-filter NAME``, default ``pop_first``): at dequeue from the data-source
      buffer: ``fn(args, rollout_id, buffer: list[list[Sample]], num_samples: int) -> list[list[Sample]]``,
      removing the returned groups from ``buffer`` in place.
    - ``stage="sample"`` (``--rollout-sample-filter NAME``): once per rollout batch:
      ``fn(args, data: list[list[Sample]]) -> None``, setting ``sample.remove_sample = True``.
    """

    fn: Callable[..., Any] = None  # type: ignore[assignment]
    stage: FilterStage = "dynamic_sampling"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("fn")
        if self.stage not in ("dynamic_sampling", "buffer", "sample"):
            raise ValueError(
                f"FilterSpec {self.name!r}: stage must be 'dynamic_sampling', 'buffer' or 'sample', got {self.stage!r}"
            )


@dataclass(frozen=True)
class LossEstimatorSpec(_Spec):
    """An RL algorithm, selected with ``--advantage-estimator NAME`` (default ``grpo``).

    - ``compute_advantages(args, batch) -> None`` fills ``batch["advantages"]`` and ``batch["returns"]``
      (lists of per-token tensors over response tokens) from rewards, masks, log-probs, values.
    - ``reward_normalization``: what the rollout side does to raw rewards before training:
      ``"group_mean_std"`` (GRPO/GSPO), ``"group_mean"`` (REINFORCE++ baseline) or ``"none"``.
    - ``sequence_level_ratio``: GSPO's per-sequence importance ratio instead of per-token.
    - ``needs_critic`` (PPO), ``needs_teacher`` (on-policy distillation).
    """

    compute_advantages: Callable[..., Any] = None  # type: ignore[assignment]
    reward_normalization: Literal["group_mean_std", "group_mean", "none"] = "none"
    sequence_level_ratio: bool = False
    needs_critic: bool = False
    needs_teacher: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("compute_advantages")


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """A model architecture: matched to a checkpoint by its HF ``architectures``/``model_type``, or
    chosen with ``--model-spec NAME`` (Miles's ``--spec MODULE FN`` also works).

    - ``hf_architectures`` / ``hf_model_types``: what this spec recognises in an HF ``config.json``.
    - ``transformer_config(hf_config) -> dict``: keyword arguments for megatron-core ``TransformerConfig``.
    - ``layer_spec(args, config, vp_stage=None) -> ModuleSpec``: megatron-core layer/block spec.
    - ``hf_to_megatron(hf_config, named_tensors: Iterable[(name, Tensor)]) -> Iterator[(name, Tensor)]``
      and ``megatron_to_hf`` the other way, streaming tensor by tensor.
    - ``gpt_model_kwargs(hf_config) -> dict``: the ``GPTModel`` arguments that are not in
      ``TransformerConfig`` (``vocab_size``, ``max_sequence_length``, ``position_embedding_type``,
      ``rotary_base``, ``share_embeddings_and_output_weights``, ...).
    """

    hf_architectures: tuple[str, ...] = ()
    hf_model_types: tuple[str, ...] = ()
    transformer_config: Callable[..., Any] | None = None
    layer_spec: Callable[..., Any] | None = None
    hf_to_megatron: Callable[..., Any] | None = None
    megatron_to_hf: Callable[..., Any] | None = None
    gpt_model_kwargs: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hf_architectures", tuple(self.hf_architectures))
        object.__setattr__(self, "hf_model_types", tuple(self.hf_model_types))
        self._require_callable_or_none(
            "transformer_config", "layer_spec", "hf_to_megatron", "megatron_to_hf", "gpt_model_kwargs")

    def matches(self, hf_config: Any) -> bool:
        """True when an HF config (object or dict) names one of this spec's architectures or model types."""
        get = hf_config.get if isinstance(hf_config, dict) else (lambda k, d=None: getattr(hf_config, k, d))
        architectures = set(get("architectures", None) or ())
        return bool(architectures & set(self.hf_architectures)) or get("model_type", None) in self.hf_model_types


@dataclass(frozen=True)
class LoggerSpec(_Spec):
    """A metrics sink, enabled with ``--logger NAME`` (repeatable; some are enabled by their own flag,
    e.g. ``--use-wandb``, ``--tensorboard-dir``).

    ``factory(args) -> Logger`` where a Logger has ``log(metrics: dict[str, float], step: int) -> None``
    (keys carry their namespace: ``train/loss``, ``rollout/raw_reward``, ``perf/rollout_time``, ...) and
    ``finish() -> None``. ``enabled_by(args) -> bool`` turns the logger on from its own flags.
    """

    factory: Callable[..., Any] = None  # type: ignore[assignment]
    enabled_by: Callable[..., bool] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("factory")
        self._require_callable_or_none("enabled_by")


@dataclass(frozen=True)
class EngineSpec(_Spec):
    """A rollout engine that serves SGLang's HTTP API, selected with ``--rollout-engine NAME``.

    - ``command(args, host, port, engine_index) -> list[str]``: the command line of one server process.
    - ``available() -> str | None``: ``None`` when it can run here, else the reason it cannot (shown
      to the user when they select it).
    """

    command: Callable[..., list[str]] = None  # type: ignore[assignment]
    available: Callable[[], str | None] = field(default=lambda: None)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_callable("command")
        self._require_callable("available")


@dataclass(frozen=True)
class TrainBackendSpec(_Spec):
    """A training backend, selected with ``--train-backend NAME`` (``fsdp`` or ``megatron``).

    ``actor_class`` is a ``"module:Class"`` import path (kept as a string so the driver never imports
    torch-heavy modules); the class is instantiated once per rank inside a Ray actor as
    ``cls(args, rank, world_size)`` and implements the train-actor protocol in
    ``miles_core.training.actor``.
    """

    actor_class: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if ":" not in self.actor_class:
            raise ValueError(f"TrainBackendSpec {self.name!r}: actor_class must be 'module:Class', got {self.actor_class!r}")


#: Registration hook name → the spec type it yields. The manager and ``miles plugins`` use this table.
SPEC_TYPES: dict[str, type] = {
    "miles_data_sources": DataSourceSpec,
    "miles_generate_functions": GenerateFunctionSpec,
    "miles_rollout_functions": RolloutFunctionSpec,
    "miles_reward_models": RewardModelSpec,
    "miles_filters": FilterSpec,
    "miles_loss_estimators": LossEstimatorSpec,
    "miles_model_specs": ModelSpec,
    "miles_loggers": LoggerSpec,
    "miles_engines": EngineSpec,
    "miles_train_backends": TrainBackendSpec,
}
