"""Selection flags are checked against the plugin registries; plugins add and check their own flags."""

from __future__ import annotations

import json

import pytest
from miles_core.config import parse_and_validate
from miles_core.config.errors import ConfigError

from miles_core import RewardModelSpec, hookimpl


def test_defaults_resolve_and_record_provenance(parse):
    args, selection = parse(return_selection=True)
    name, spec, provenance = selection.components["train backend"]
    assert (name, spec.name, provenance.plugin) == ("fsdp", "fsdp", "fake_defaults")
    assert selection.components["reward model"] is None  # --rm-type unset: per-sample metadata["rm_type"]
    assert args.rollout_engine == "embedded"
    assert selection.notes["rollout engine"] == "auto, because sglang cannot run here: sglang is not installed"
    assert args.model_spec == "test_arch"
    assert "matched architectures ['TestArchForCausalLM']" in selection.notes["model spec"]
    assert [name for name, _ in selection.loggers] == ["stdout", "jsonl"]


@pytest.mark.parametrize(
    "flag, value, available",
    [
        ("--data-source", "nope", "jsonl, test_source"),
        ("--generate-function", "nope", "single_turn, test_gen"),
        ("--rollout-function", "nope", "default, test_rollout"),
        ("--rm-type", "nope", "test_rm"),
        ("--dynamic-sampling-filter", "nope", "pop_first, test_buffer, test_group_filter, test_sample_filter"),
        ("--buffer-filter", "nope", "pop_first"),
        ("--rollout-sample-filter", "nope", "pop_first"),
        ("--advantage-estimator", "nope", "grpo, test_critic_estimator"),
        ("--train-backend", "nope", "fsdp, megatron, test_backend"),
        ("--rollout-engine", "nope", "embedded, sglang, test_engine, test_gpu_engine"),
        ("--logger", "nope", "jsonl, stdout, test_logger, wandb"),
        ("--model-spec", "nope", "test_arch"),
    ],
)
def test_unknown_name_lists_what_is_available(parse, flag, value, available):
    with pytest.raises(ConfigError, match=f"unknown {flag} 'nope'. Available: .*{available.split(', ')[0]}"):
        parse(flag, value)


def test_known_rewards_say_which_package_provides_them(parse):
    with pytest.raises(ConfigError, match="'math' is provided by miles-rm-math: pip install miles-rm-math"):
        parse("--rm-type", "math")


def test_every_selection_flag_accepts_a_registered_name(parse):
    args, selection = parse(
        "--data-source", "test_source", "--generate-function", "test_gen", "--rollout-function", "test_rollout",
        "--rm-type", "test_rm", "--dynamic-sampling-filter", "test_group_filter", "--buffer-filter", "test_buffer",
        "--rollout-sample-filter", "test_sample_filter", "--advantage-estimator", "test_estimator",
        "--train-backend", "test_backend", "--rollout-engine", "test_engine", "--logger", "test_logger",
        "--model-spec", "test_arch", return_selection=True)
    chosen = {label: entry[0] for label, entry in selection.components.items() if entry}
    assert chosen == {
        "data source": "test_source", "generate function": "test_gen", "rollout function": "test_rollout",
        "reward model": "test_rm", "dynamic-sampling filter": "test_group_filter", "buffer filter": "test_buffer",
        "sample filter": "test_sample_filter", "rollout engine": "test_engine", "loss estimator": "test_estimator",
        "train backend": "test_backend", "model spec": "test_arch"}
    assert [name for name, _ in selection.loggers] == ["stdout", "jsonl", "test_logger"]


def test_a_filter_of_another_stage_is_refused(parse):
    with pytest.raises(ConfigError, match="--buffer-filter 'test_group_filter' is a 'dynamic_sampling' filter"):
        parse("--buffer-filter", "test_group_filter")


def test_an_engine_that_cannot_run_here_says_why(parse):
    with pytest.raises(ConfigError, match="--rollout-engine test_gpu_engine cannot run here: needs a GPU"):
        parse("--rollout-engine", "test_gpu_engine")


def test_use_wandb_turns_on_the_wandb_logger(parse):
    _, selection = parse("--use-wandb", return_selection=True)
    assert [name for name, _ in selection.loggers] == ["stdout", "jsonl", "wandb"]


def test_modes_skip_components_they_do_not_use(parse):
    _, selection = parse("--load-debug-rollout-data", "d/{rollout_id}.pt", "--rm-type", "not_checked",
                         return_selection=True)
    assert selection.components["reward model"] is None and selection.components["rollout engine"] is None
    _, selection = parse("--debug-rollout-only", "--train-backend", "not_checked", return_selection=True)
    assert selection.components["train backend"] is None


def test_megatron_needs_a_matching_model_spec(parse, tmp_path, prompt_file):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    base = ["--prompt-data", str(prompt_file), "--rollout-batch-size", "2", "--actor-num-gpus-per-node", "1",
            "--hf-checkpoint", str(other)]
    args, selection = parse(*base, base=False, return_selection=True)  # fsdp: transformers loads it
    assert args.model_spec is None and "the fsdp backend loads it with transformers" in selection.notes["model spec"]
    with pytest.raises(ConfigError, match="no model spec matches --hf-checkpoint .* megatron backend needs one"):
        parse(*base, "--train-backend", "megatron", base=False)


class _FlagPlugin:
    @hookimpl
    def miles_add_arguments(self, parser):
        group = parser.add_argument_group("flag-plugin")
        group.add_argument("--my-reward-scale", type=float, default=1.0, help="Multiply the reward.")

    @hookimpl
    def miles_validate_args(self, args):
        if args.my_reward_scale <= 0:
            raise ValueError("--my-reward-scale must be positive")


def test_plugins_add_and_validate_their_flags(bare_pm, base_argv):
    bare_pm.register_plugin(_FlagPlugin(), name="flag_plugin")
    assert parse_and_validate([*base_argv, "--my-reward-scale", "2"], bare_pm).my_reward_scale == 2.0
    with pytest.raises(ConfigError, match=r"--my-reward-scale must be positive \(checked by plugin 'flag_plugin'\)"):
        parse_and_validate([*base_argv, "--my-reward-scale", "-1"], bare_pm)


class _ClashingPlugin:
    @hookimpl
    def miles_add_arguments(self, parser):
        parser.add_argument("--lr", type=float)


def test_a_plugin_flag_clashing_with_a_core_flag_names_the_plugin(bare_pm, base_argv):
    bare_pm.register_plugin(_ClashingPlugin(), name="clashing")
    with pytest.raises(ConfigError, match="plugin 'clashing' defines a flag that already exists .*--lr"):
        parse_and_validate(base_argv, bare_pm)


class _DuplicateReward:
    @hookimpl
    def miles_reward_models(self):
        yield RewardModelSpec(name="test_rm", description="second provider", fn=lambda *a: 0.0)


def test_two_plugins_with_one_name_is_an_error_naming_both(bare_pm, base_argv):
    bare_pm.register_plugin(_DuplicateReward(), name="duplicate_rm")
    with pytest.raises(ConfigError, match="(?s)'test_rm' provided by.*fake_components.*duplicate_rm"):
        parse_and_validate(base_argv, bare_pm)


def test_path_flags_become_adhoc_specs(bare_pm, base_argv, tmp_path, monkeypatch):
    module = tmp_path / "my_custom_rewards.py"
    module.write_text("async def exact(args, sample, **kwargs):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    args, selection = parse_and_validate([*base_argv, "--custom-rm-path", "my_custom_rewards:exact"], bare_pm,
                                         return_selection=True)
    name, spec, provenance = selection.components["reward model"]
    assert args.rm_type == name and "--custom-rm-path my_custom_rewards:exact" in provenance.describe()
    with pytest.raises(ConfigError, match="--custom-rm-path 'my_custom_rewards:missing'"):
        parse_and_validate([*base_argv, "--custom-rm-path", "my_custom_rewards:missing"], bare_pm)


def test_plugin_selection_is_stored_for_ray_workers(parse):
    args = parse()
    assert args.plugin_selection["autoload"] is True and args.plugin == []


class _RunnableSglang:
    @hookimpl
    def miles_engines(self):
        from miles_core import EngineSpec

        yield EngineSpec(name="sglang", description="SGLang that can run", command=lambda *a: ["true"])
        yield EngineSpec(name="embedded", description="embedded", command=lambda *a: ["true"])


def test_auto_engine_prefers_sglang_where_it_runs(base_argv):
    import miles_config_fake_plugin as fake
    from miles_core.plugins.manager import MilesPluginManager

    pm = MilesPluginManager()
    pm.register_plugin(fake.COMPONENTS_PLUGIN, name="fake_components")
    pm.register_plugin(_RunnableSglang(), name="runnable_sglang")
    argv = [*base_argv, "--data-source", "test_source", "--generate-function", "test_gen", "--rollout-function",
            "test_rollout", "--buffer-filter", "test_buffer", "--advantage-estimator", "test_estimator",
            "--train-backend", "test_backend"]
    args, selection = parse_and_validate(argv, pm, return_selection=True)
    assert args.rollout_engine == "sglang"
    assert selection.notes["rollout engine"] == "auto, because sglang can run here"
    assert selection.loggers == []  # no logger plugin loaded in this manager
