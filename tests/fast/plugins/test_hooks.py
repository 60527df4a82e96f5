"""Every hookspec, exercised through a real manager: registration, option and lifecycle hooks."""

from __future__ import annotations

import argparse

import pytest

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
    Sample,
    TrainBackendSpec,
    hookimpl,
)


def _fn(*args, **kwargs):
    return None


#: hook name → (registry, a spec it may yield)
REGISTRATION_HOOKS = {
    "miles_data_sources": ("data_sources", DataSourceSpec(name="t_list", description="d", factory=_fn)),
    "miles_generate_functions": ("generate_functions", GenerateFunctionSpec(name="t_echo", description="d", fn=_fn)),
    "miles_rollout_functions": ("rollout_functions", RolloutFunctionSpec(name="t_replay", description="d", factory=_fn)),
    "miles_reward_models": ("reward_models", RewardModelSpec(name="t_exact", description="d", fn=_fn)),
    "miles_filters": ("filters", FilterSpec(name="t_keep", description="d", fn=_fn, stage="buffer")),
    "miles_loss_estimators": ("loss_estimators", LossEstimatorSpec(name="t_pg", description="d", compute_advantages=_fn)),
    "miles_model_specs": ("model_specs", ModelSpec(name="t_arch", description="d", hf_model_types=("t",))),
    "miles_loggers": ("loggers", LoggerSpec(name="t_print", description="d", factory=_fn)),
    "miles_engines": ("engines", EngineSpec(name="t_shim", description="d", command=_fn)),
    "miles_train_backends": ("train_backends", TrainBackendSpec(name="t_ds", description="d", actor_class="m:C")),
}


@pytest.mark.parametrize("hook_name", sorted(REGISTRATION_HOOKS))
def test_registration_hook_fills_its_registry(miles_plugin_manager, register_plugin, hook_name):
    kind, spec = REGISTRATION_HOOKS[hook_name]

    def registration(self):
        yield spec

    plugin_class = type(f"Provides_{kind}", (), {hook_name: hookimpl(registration)})
    name = register_plugin(plugin_class(), name=f"test-{kind}")
    assert miles_plugin_manager.get(kind, spec.name) is spec
    assert miles_plugin_manager.provenance(kind, spec.name).plugin == name
    assert miles_plugin_manager.plugin_infos[name].provides == {kind: [spec.name]}
    assert miles_plugin_manager.registry(hook_name) is miles_plugin_manager.registry(kind)


class DemoOptions:
    """A plugin with its own flag, a check of it and a subcommand."""

    @hookimpl
    def miles_add_arguments(self, parser):
        group = parser.add_argument_group("demo-plugin")
        group.add_argument("--demo-scale", type=float, default=1.0, help="Multiply the reward.")

    @hookimpl
    def miles_validate_args(self, args):
        if args.demo_scale <= 0:
            raise ValueError(f"--demo-scale must be positive, got {args.demo_scale}")
        args.demo_scale_squared = args.demo_scale ** 2

    @hookimpl
    def miles_register_commands(self, subparsers):
        hello = subparsers.add_parser("hello", help="Say hello")
        hello.add_argument("--name", default="world")
        hello.set_defaults(func=lambda args: f"hello {args.name}")


def test_option_hooks_add_check_and_command(miles_plugin_manager, register_plugin):
    register_plugin(DemoOptions())
    parser = argparse.ArgumentParser(prog="miles train")
    miles_plugin_manager.hook.miles_add_arguments(parser=parser)
    assert any(group.title == "demo-plugin" for group in parser._action_groups)

    args = parser.parse_args(["--demo-scale", "3"])
    miles_plugin_manager.hook.miles_validate_args(args=args)
    assert args.demo_scale_squared == 9.0
    with pytest.raises(ValueError, match=r"^--demo-scale must be positive, got -1.0$"):
        miles_plugin_manager.hook.miles_validate_args(args=parser.parse_args(["--demo-scale", "-1"]))

    cli = argparse.ArgumentParser(prog="miles")
    miles_plugin_manager.hook.miles_register_commands(subparsers=cli.add_subparsers(dest="command"))
    command = cli.parse_args(["hello", "--name", "miles"])
    assert command.func(command) == "hello miles"


class Recorder:
    """Records every lifecycle call it receives, in order."""

    def __init__(self, tag: str, calls: list):
        self.tag, self.calls = tag, calls

    @hookimpl
    def miles_after_rewards(self, args, samples, evaluation):
        for sample in samples:
            sample.reward -= 0.5
        self.calls.append((self.tag, "miles_after_rewards", evaluation))

    @hookimpl
    def miles_after_rollout(self, args, rollout_id, samples):
        self.calls.append((self.tag, "miles_after_rollout", rollout_id, len(samples)))

    @hookimpl
    def miles_before_log_prob(self, args, model, store_prefix):
        self.calls.append((self.tag, "miles_before_log_prob", store_prefix))

    @hookimpl
    def miles_before_train_step(self, args, rollout_id, step_id, model, optimizer, lr_scheduler):
        self.calls.append((self.tag, "miles_before_train_step", rollout_id, step_id))

    @hookimpl
    def miles_after_save(self, args, rollout_id, checkpoint_dir, hf_checkpoint_dir):
        self.calls.append((self.tag, "miles_after_save", checkpoint_dir, hf_checkpoint_dir))


def test_lifecycle_hooks_call_every_implementation(miles_plugin_manager, register_plugin):
    calls: list = []
    register_plugin(Recorder("a", calls), name="recorder-a")
    register_plugin(Recorder("b", calls), name="recorder-b")
    hook, args = miles_plugin_manager.hook, argparse.Namespace()
    group = [Sample(reward=1.0), Sample(reward=2.0)]

    hook.miles_after_rewards(args=args, samples=group, evaluation=False)
    hook.miles_after_rollout(args=args, rollout_id=7, samples=[group])
    hook.miles_before_log_prob(args=args, model=None, store_prefix="ref_")
    hook.miles_before_train_step(args=args, rollout_id=7, step_id=0, model=None, optimizer=None, lr_scheduler=None)
    hook.miles_after_save(args=args, rollout_id=7, checkpoint_dir="/ckpt/7", hf_checkpoint_dir=None)

    assert [reward for reward in (s.reward for s in group)] == [0.0, 1.0]  # both plugins shaped the rewards
    # pluggy calls the most recently registered implementation first.
    assert calls == [
        ("b", "miles_after_rewards", False), ("a", "miles_after_rewards", False),
        ("b", "miles_after_rollout", 7, 1), ("a", "miles_after_rollout", 7, 1),
        ("b", "miles_before_log_prob", "ref_"), ("a", "miles_before_log_prob", "ref_"),
        ("b", "miles_before_train_step", 7, 0), ("a", "miles_before_train_step", 7, 0),
        ("b", "miles_after_save", "/ckpt/7", None), ("a", "miles_after_save", "/ckpt/7", None),
    ]


def test_unregistered_plugin_stops_receiving_calls(miles_plugin_manager):
    calls: list = []
    miles_plugin_manager.register_plugin(Recorder("x", calls), name="gone")
    miles_plugin_manager.unregister_plugin("gone")
    miles_plugin_manager.hook.miles_after_rollout(args=None, rollout_id=1, samples=[])
    assert calls == [] and "gone" not in miles_plugin_manager.plugin_infos
