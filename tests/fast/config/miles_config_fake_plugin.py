"""A fake plugin giving one spec of every kind under test-only names, for the config and CLI tests.

It also registers specs under the core's default names (``jsonl``, ``single_turn``, ``grpo``, ``fsdp``, ``embedded``,
…) through :data:`DEFAULT_NAMES_PLUGIN`, for tests that use a bare manager where no built-in is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from miles_core import (
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
    hookimpl,
)


def _noop(*args, **kwargs):
    return None


def _engine_command(args, host, port, engine_index):
    return ["true"]


def write_fake_checkpoint(path: Path) -> Path:
    """A directory whose ``config.json`` is matched by the ``test_arch`` model spec (no weights)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"architectures": ["TestArchForCausalLM"], "model_type": "test_arch"}))
    return path


class _Components:
    """Specs named ``test_*``: safe to load next to any installed plugin."""

    def __init__(self, prefix: str = "test_") -> None:
        self.p = prefix

    @hookimpl
    def miles_data_sources(self):
        yield DataSourceSpec(name=f"{self.p}source", description="fake data source", factory=_noop)

    @hookimpl
    def miles_generate_functions(self):
        yield GenerateFunctionSpec(name=f"{self.p}gen", description="fake generate function", fn=_noop)

    @hookimpl
    def miles_rollout_functions(self):
        yield RolloutFunctionSpec(name=f"{self.p}rollout", description="fake rollout function", factory=_noop)

    @hookimpl
    def miles_reward_models(self):
        yield RewardModelSpec(name=f"{self.p}rm", description="fake reward", fn=_noop)

    @hookimpl
    def miles_filters(self):
        yield FilterSpec(name=f"{self.p}group_filter", description="fake group filter", fn=_noop,
                         stage="dynamic_sampling")
        yield FilterSpec(name=f"{self.p}buffer", description="fake buffer filter", fn=_noop, stage="buffer")
        yield FilterSpec(name=f"{self.p}sample_filter", description="fake sample filter", fn=_noop, stage="sample")

    @hookimpl
    def miles_loss_estimators(self):
        yield LossEstimatorSpec(name=f"{self.p}estimator", description="fake estimator", compute_advantages=_noop,
                                reward_normalization="group_mean_std")
        yield LossEstimatorSpec(name=f"{self.p}critic_estimator", description="fake PPO-like estimator",
                                compute_advantages=_noop, needs_critic=True)
        yield LossEstimatorSpec(name=f"{self.p}teacher_estimator", description="fake distillation estimator",
                                compute_advantages=_noop, needs_teacher=True)

    @hookimpl
    def miles_model_specs(self):
        yield ModelSpec(name=f"{self.p}arch", description="fake model spec", hf_architectures=("TestArchForCausalLM",),
                        hf_model_types=("test_arch",))

    @hookimpl
    def miles_loggers(self):
        yield LoggerSpec(name=f"{self.p}logger", description="fake logger", factory=_noop)

    @hookimpl
    def miles_engines(self):
        yield EngineSpec(name=f"{self.p}engine", description="fake engine that can run", command=_engine_command)
        yield EngineSpec(name=f"{self.p}gpu_engine", description="fake engine that cannot run",
                         command=_engine_command, available=lambda: "needs a GPU")

    @hookimpl
    def miles_train_backends(self):
        yield TrainBackendSpec(name=f"{self.p}backend", description="fake backend", actor_class="fake.module:Actor")


class _DefaultNames:
    """Specs under the names the core flags default to (only for a bare manager)."""

    @hookimpl
    def miles_data_sources(self):
        yield DataSourceSpec(name="jsonl", description="fake jsonl", factory=_noop)

    @hookimpl
    def miles_generate_functions(self):
        yield GenerateFunctionSpec(name="single_turn", description="fake single_turn", fn=_noop)

    @hookimpl
    def miles_rollout_functions(self):
        yield RolloutFunctionSpec(name="default", description="fake default rollout", factory=_noop)

    @hookimpl
    def miles_filters(self):
        yield FilterSpec(name="pop_first", description="fake pop_first", fn=_noop, stage="buffer")

    @hookimpl
    def miles_loss_estimators(self):
        yield LossEstimatorSpec(name="grpo", description="fake grpo", compute_advantages=_noop)

    @hookimpl
    def miles_train_backends(self):
        yield TrainBackendSpec(name="fsdp", description="fake fsdp", actor_class="fake.module:Actor")
        yield TrainBackendSpec(name="megatron", description="fake megatron", actor_class="fake.module:Actor")

    @hookimpl
    def miles_engines(self):
        yield EngineSpec(name="embedded", description="fake embedded", command=_engine_command)
        yield EngineSpec(name="sglang", description="fake sglang", command=_engine_command,
                         available=lambda: "sglang is not installed")

    @hookimpl
    def miles_loggers(self):
        yield LoggerSpec(name="stdout", description="fake stdout", factory=_noop, enabled_by=lambda args: True)
        yield LoggerSpec(name="jsonl", description="fake jsonl logger", factory=_noop)
        yield LoggerSpec(name="wandb", description="fake wandb", factory=_noop,
                         enabled_by=lambda args: bool(args.use_wandb))


COMPONENTS_PLUGIN = _Components()
DEFAULT_NAMES_PLUGIN = _DefaultNames()

# Loaded with ``-p miles_config_fake_plugin`` (the module itself is the plugin): the test_* specs only.
_module_plugin = _Components()
miles_data_sources = _module_plugin.miles_data_sources
miles_generate_functions = _module_plugin.miles_generate_functions
miles_rollout_functions = _module_plugin.miles_rollout_functions
miles_reward_models = _module_plugin.miles_reward_models
miles_filters = _module_plugin.miles_filters
miles_loss_estimators = _module_plugin.miles_loss_estimators
miles_model_specs = _module_plugin.miles_model_specs
miles_loggers = _module_plugin.miles_loggers
miles_engines = _module_plugin.miles_engines
miles_train_backends = _module_plugin.miles_train_backends
