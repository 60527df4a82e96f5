"""Miles's ``--*-path`` flags become ad-hoc specs, hook plugins or checked imports; errors name flag and path."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from miles_core.plugins import path_flags
from miles_core.plugins.errors import PathFlagError
from miles_core.plugins.legacy_adapters import LegacyRolloutFn
from miles_core.plugins.path_flags import (
    add_user_function_arguments,
    load_generate_function,
    load_path_flag,
    register_path_specs,
)
from miles_core.rollout.generate_types import GenerateFnInput
from miles_core.rollout.rollout_types import (
    RolloutFnConstructorInput,
    RolloutFnEvalInput,
    RolloutFnEvalOutput,
    RolloutFnTrainInput,
    RolloutFnTrainOutput,
)

from miles_core import Sample

USER_CODE = '''
    CALLS = []

    async def reward(args, sample, **kwargs):
        """1 when the response contains the label."""
        return float(str(sample.label) in sample.response)

    class ListSource:
        def __init__(self, args):
            self.args = args

    async def legacy_generate(args, sample, sampling_params, evaluation=False):
        sample.response = f"legacy eval={evaluation} t={sampling_params['temperature']}"
        return sample

    async def legacy_generate_three(args, sample, sampling_params):
        sample.response = "three"
        return sample

    async def new_generate(input):
        input.sample.response = "new"
        return input.sample
    new_generate.add_arguments = lambda parser: parser.add_argument("--new-generate-width", type=int, default=3)

    class GenerateClass:
        async def __call__(self, input):
            input.sample.response = "class"
            return input.sample

    def legacy_rollout(args, rollout_id, data_source, evaluation=False):
        if evaluation:
            return {"ds": {"rewards": [1.0], "truncated": [False], "samples": []}}
        return [[data_source, rollout_id]]

    async def async_legacy_rollout(args, rollout_id, data_source, evaluation=False):
        return [[rollout_id]]

    class RolloutClass:
        def __init__(self, input):
            self.input = input
        def __call__(self, input):
            return input.rollout_id

    def dynamic_filter(args, samples, **kwargs):
        return True

    def buffer_filter(args, rollout_id, buffer, num_samples):
        return buffer[:num_samples]

    def sample_filter(args, data):
        pass

    def layer_spec(args, config, vp_stage=None):
        return ("layers", config)

    LAYER_SPEC = {"constant": True}

    def before_log_prob(args, model, store_prefix):
        CALLS.append(("log_prob", model, store_prefix))

    def before_train_step(args, rollout_id, step_id, model, optimizer, scheduler):
        CALLS.append(("train_step", rollout_id, step_id, scheduler))

    def post_save(args, rollout_id, checkpoint_dir, hf_checkpoint_dir):
        CALLS.append(("save", rollout_id, checkpoint_dir, hf_checkpoint_dir))

    def custom_loss(args, batch, logits, sum_of_sample_mean):
        return 0.0, {}

    NOT_CALLABLE = 3
'''


@pytest.fixture
def user_code(miles_fake_distribution):
    path_flags.clear_path_flag_cache()
    miles_fake_distribution("user-code", "0.0.1", {}, {"user_code": USER_CODE})
    import user_code

    yield user_code
    path_flags.clear_path_flag_cache()


def _args(**flags):
    return argparse.Namespace(**flags)


@pytest.mark.parametrize(("dest", "kind", "selects", "attr", "extra"), [
    ("custom_rm_path", "reward_models", "rm_type", "reward", {}),
    ("data_source_path", "data_sources", "data_source", "ListSource", {}),
    ("dynamic_sampling_filter_path", "filters", "dynamic_sampling_filter", "dynamic_filter", {"stage": "dynamic_sampling"}),
    ("buffer_filter_path", "filters", "buffer_filter", "buffer_filter", {"stage": "buffer"}),
    ("rollout_sample_filter_path", "filters", "rollout_sample_filter", "sample_filter", {"stage": "sample"}),
])
@pytest.mark.parametrize("separator", [":", "."])
def test_registry_flags_become_specs_and_select_them(user_code, miles_plugin_manager, dest, kind, selects, attr,
                                                     extra, separator):
    path = f"user_code{separator}{attr}"
    args = _args(**{dest: path, selects: "something_else"})
    register_path_specs(miles_plugin_manager, args)
    flag = "--" + dest.replace("_", "-")
    assert getattr(args, selects) == f"user_code.{attr}"
    spec = miles_plugin_manager.get(kind, getattr(args, selects))
    assert getattr(spec, "fn", getattr(spec, "factory", None)) is getattr(user_code, attr)
    for field, value in extra.items():
        assert getattr(spec, field) == value
    assert miles_plugin_manager.provenance(kind, spec.name).plugin == f"{flag} {path}"
    info = miles_plugin_manager.plugin_infos[flag]
    assert (info.origin, info.target, info.provides) == ("flag", path, {kind: [spec.name]})


def test_reward_description_and_group_rm(user_code, miles_plugin_manager):
    args = _args(custom_rm_path="user_code:reward", group_rm=True)
    register_path_specs(miles_plugin_manager, args)
    spec = miles_plugin_manager.get("reward_models", "user_code.reward")
    assert spec.batched is True
    assert spec.description == "1 when the response contains the label."


def _generate_input(**overrides):
    fields = dict(args=_args(), state=None, sample=Sample(prompt="p"), sampling_params={"temperature": 0.7},
                  evaluation=True)
    fields.update(overrides)
    return GenerateFnInput(**fields)


def test_legacy_generate_function_is_adapted_to_the_input_form(user_code, miles_plugin_manager):
    args = _args(custom_generate_function_path="user_code:legacy_generate")
    register_path_specs(miles_plugin_manager, args)
    spec = miles_plugin_manager.get("generate_functions", args.generate_function)
    sample = asyncio.run(spec.fn(_generate_input()))
    assert sample.response == "legacy eval=True t=0.7"
    assert spec.fn.legacy_fn is user_code.legacy_generate
    assert load_path_flag(args, "custom_generate_function_path") is spec.fn  # one adapted object, cached


def test_legacy_generate_without_evaluation_parameter(user_code):
    fn = load_generate_function("user_code.legacy_generate_three", source="eval dataset 'aime'")
    assert asyncio.run(fn(_generate_input())).response == "three"


@pytest.mark.parametrize(("attr", "response"), [("new_generate", "new"), ("GenerateClass", "class")])
def test_input_form_generate_functions_are_kept(user_code, miles_plugin_manager, attr, response):
    args = _args(custom_generate_function_path=f"user_code:{attr}")
    register_path_specs(miles_plugin_manager, args)
    fn = miles_plugin_manager.get("generate_functions", args.generate_function).fn
    if attr == "new_generate":
        assert fn is user_code.new_generate
    assert asyncio.run(fn(_generate_input())).response == response


def test_legacy_rollout_function_is_adapted(user_code, miles_plugin_manager):
    args = _args(rollout_function_path="user_code.legacy_rollout")
    register_path_specs(miles_plugin_manager, args)
    factory = miles_plugin_manager.get("rollout_functions", args.rollout_function).factory
    rollout = factory(RolloutFnConstructorInput(args, data_source="SOURCE"))
    assert isinstance(rollout, LegacyRolloutFn)
    train = rollout(RolloutFnTrainInput(rollout_id=4))
    assert train == RolloutFnTrainOutput(samples=[["SOURCE", 4]])
    evaluation = rollout(RolloutFnEvalInput(rollout_id=4))
    assert isinstance(evaluation, RolloutFnEvalOutput) and evaluation.data["ds"]["rewards"] == [1.0]


def test_async_legacy_rollout_and_class_form(user_code, miles_plugin_manager):
    args = _args(rollout_function_path="user_code.async_legacy_rollout", eval_function_path="user_code:RolloutClass")
    register_path_specs(miles_plugin_manager, args)
    rollout = miles_plugin_manager.get("rollout_functions", args.rollout_function).factory(
        RolloutFnConstructorInput(args, data_source=None))
    assert asyncio.run(rollout(RolloutFnTrainInput(rollout_id=2))) == RolloutFnTrainOutput(samples=[[2]])
    eval_factory = load_path_flag(args, "eval_function_path")
    assert eval_factory is user_code.RolloutClass
    assert eval_factory(RolloutFnConstructorInput(args, None))(RolloutFnEvalInput(7)) == 7


def test_spec_flag_callable_or_constant(user_code, miles_plugin_manager):
    args = _args(spec=["user_code", "layer_spec"])
    register_path_specs(miles_plugin_manager, args)
    assert args.model_spec == "user_code.layer_spec"
    spec = miles_plugin_manager.get("model_specs", "user_code.layer_spec")
    assert spec.layer_spec(args, "CONFIG") == ("layers", "CONFIG")
    assert miles_plugin_manager.provenance("model_specs", spec.name).plugin == "--spec user_code layer_spec"

    args = _args(spec=["user_code", "LAYER_SPEC"])
    register_path_specs(miles_plugin_manager, args)
    constant = miles_plugin_manager.get("model_specs", "user_code.LAYER_SPEC")
    assert constant.layer_spec(args, "CONFIG", vp_stage=1) is user_code.LAYER_SPEC
    assert constant.description == "custom code from --spec user_code LAYER_SPEC"


def test_megatron_hook_flags_become_lifecycle_plugins(user_code, miles_plugin_manager):
    args = _args(custom_megatron_before_log_prob_hook_path="user_code:before_log_prob",
                 custom_megatron_before_train_step_hook_path="user_code:before_train_step",
                 custom_megatron_post_save_hook_path="user_code.post_save")
    register_path_specs(miles_plugin_manager, args)
    register_path_specs(miles_plugin_manager, args)  # twice: still one plugin per flag
    hook = miles_plugin_manager.hook
    hook.miles_before_log_prob(args=args, model="M", store_prefix="ref_")
    hook.miles_before_train_step(args=args, rollout_id=1, step_id=2, model="M", optimizer="O", lr_scheduler="S")
    hook.miles_after_save(args=args, rollout_id=3, checkpoint_dir="/ckpt", hf_checkpoint_dir=None)
    assert user_code.CALLS == [("log_prob", "M", "ref_"), ("train_step", 1, 2, "S"), ("save", 3, "/ckpt", None)]
    info = miles_plugin_manager.plugin_infos["--custom-megatron-post-save-hook-path"]
    assert (info.origin, info.target, info.hooks) == ("flag", "user_code.post_save", ["miles_after_save"])


def test_loaded_flags_are_imported_at_validation_and_cached(user_code, miles_plugin_manager):
    args = _args(custom_loss_function_path="user_code:custom_loss", custom_tis_function_path=None)
    register_path_specs(miles_plugin_manager, args)
    assert miles_plugin_manager.plugin_infos["--custom-loss-function-path"].target == "user_code:custom_loss"
    assert load_path_flag(args, "custom_loss_function_path") is user_code.custom_loss
    assert load_path_flag(args, "custom_tis_function_path") is None
    user_code.custom_loss = lambda *a: "replaced"  # cached: the flag keeps what validation imported
    assert load_path_flag(args, "custom_loss_function_path").__name__ == "custom_loss"


@pytest.mark.parametrize(("flags", "message"), [
    ({"custom_loss_function_path": "no_such_module_xyz:fn"},
     "--custom-loss-function-path 'no_such_module_xyz:fn': cannot import module 'no_such_module_xyz' "
     "(ModuleNotFoundError: No module named 'no_such_module_xyz'). Is the package installed in this environment "
     "(and on every Ray worker)?"),
    ({"custom_rm_path": "user_code.no_such_reward"},
     "--custom-rm-path 'user_code.no_such_reward': module 'user_code' has no attribute 'no_such_reward'"),
    ({"dynamic_sampling_filter_path": "user_code:NOT_CALLABLE"},
     "--dynamic-sampling-filter-path 'user_code:NOT_CALLABLE': expected a function or class, got int 3"),
    ({"custom_megatron_init_path": "justaname"},
     "--custom-megatron-init-path 'justaname': expected 'package.module:function' or 'package.module.function'"),
    ({"spec": ["user_code"]},
     "--spec 'user_code': expected two words, MODULE FN (as in '--spec my_pkg.spec get_spec')"),
    ({"custom_megatron_post_save_hook_path": "user_code:nope"},
     "--custom-megatron-post-save-hook-path 'user_code:nope': module 'user_code' has no attribute 'nope'"),
])
def test_errors_name_the_flag_and_the_path(user_code, miles_plugin_manager, flags, message):
    with pytest.raises(PathFlagError) as error:
        register_path_specs(miles_plugin_manager, _args(**flags))
    assert str(error.value) == message


def test_registering_twice_is_harmless(user_code, miles_plugin_manager):
    """The CLI validates, then a command (or a worker) may register the same flags again."""
    args = _args(custom_rm_path="user_code:reward", custom_loss_function_path="user_code:custom_loss")
    register_path_specs(miles_plugin_manager, args)
    register_path_specs(miles_plugin_manager, args)
    assert miles_plugin_manager.registry("reward_models").names().count("user_code.reward") == 1
    assert miles_plugin_manager.conflicts() is None


def test_user_function_add_arguments(user_code):
    parser = argparse.ArgumentParser()
    add_user_function_arguments(parser, _args(custom_generate_function_path="user_code:new_generate"))
    assert parser.parse_args([]).new_generate_width == 3


def test_load_object_spellings(user_code):
    from miles_core.plugins.loading import ObjectPathError, load_object

    assert load_object("user_code:ListSource.__init__") is user_code.ListSource.__init__
    assert load_object("user_code.ListSource.__init__") is user_code.ListSource.__init__  # longest module prefix
    with pytest.raises(ObjectPathError) as error:
        load_object("user_code.nope_module.fn", flag="--x")
    assert str(error.value) == ("--x 'user_code.nope_module.fn': cannot import module 'user_code.nope_module' "
                                "(ModuleNotFoundError: No module named 'user_code.nope_module'; 'user_code' is not a "
                                "package). Is the package installed in this environment (and on every Ray worker)?")
