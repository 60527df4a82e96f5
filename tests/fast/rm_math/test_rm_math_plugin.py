"""miles-rm-math is an ordinary plugin: its names come from its entry point, and its flags from its hooks."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings

import pytest
from miles_core.plugins.manager import PluginSelection, build_plugin_manager

from miles_core import RewardModelSpec

NAMES = ("math", "dapo", "deepscaler", "gemma_math", "boxed_math", "boxed_dapo", "boxed_deepscaler", "boxed_gemma_math")


def test_names_come_from_the_entry_point(rm_math_manager):
    registry = rm_math_manager.registry("reward_models")
    for name in NAMES:
        assert name in registry
        provenance = rm_math_manager.provenance("reward_models", name)
        assert provenance.distribution == "miles-rm-math" and provenance.plugin == "rm_math"
    assert rm_math_manager.get("reward_models", "dapo").reward_key == "score"
    assert rm_math_manager.get("reward_models", "boxed_dapo").reward_key == "score"
    assert rm_math_manager.get("reward_models", "math").reward_key is None


def test_blocking_the_distribution_removes_math_and_says_what_to_install():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other plugins of the workspace may be half-built; not our concern here
        manager = build_plugin_manager(PluginSelection(blocked=("miles-rm-math",)))
    assert manager.plugin_infos["rm_math"].status == "blocked"
    assert "math" not in manager.registry("reward_models")
    with pytest.raises(ValueError, match="pip install miles-rm-math") as error:
        manager.get("reward_models", "math", flag="--rm-type")
    assert "--rm-type 'math'" in str(error.value)


def test_custom_rm_path_coexists_with_math(rm_math_manager):
    async def my_rm(args, sample, **kwargs):
        return 0.5

    manager = build_plugin_manager(PluginSelection(requested=("miles-rm-math",), autoload=False))
    manager.add_adhoc_spec("reward_models", RewardModelSpec(name="custom_rm", description="mine", fn=my_rm),
                           source="--custom-rm-path my_pkg.rewards:my_rm")
    registry = manager.registry("reward_models")
    assert "custom_rm" in registry and "math" in registry
    assert manager.provenance("reward_models", "custom_rm").plugin == "--custom-rm-path my_pkg.rewards:my_rm"
    assert manager.provenance("reward_models", "math").distribution == "miles-rm-math"


def _parser_with_plugin_flags(manager) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    manager.hook.miles_add_arguments(parser=parser)
    return parser


def test_flags_live_in_an_argument_group_named_after_the_package(rm_math_manager):
    parser = _parser_with_plugin_flags(rm_math_manager)
    [group] = [g for g in parser._action_groups if g.title == "miles-rm-math"]
    assert {a.dest for a in group._group_actions} == {
        "math_verify_timeout", "math_verify_workers", "math_verify_memory_limit_mb"}
    args = parser.parse_args([])
    assert args.math_verify_timeout == 5.0 and args.math_verify_workers >= 1
    rm_math_manager.hook.miles_validate_args(args=args)


@pytest.mark.parametrize(("flags", "message"), [
    (["--math-verify-timeout", "0"], "--math-verify-timeout must be positive"),
    (["--math-verify-workers", "0"], "--math-verify-workers must be positive"),
    (["--math-verify-memory-limit-mb", "100"], "--math-verify-memory-limit-mb must be 0"),
])
def test_bad_flag_values_fail_validation(rm_math_manager, flags, message):
    args = _parser_with_plugin_flags(rm_math_manager).parse_args(flags)
    with pytest.raises(ValueError, match=message):
        rm_math_manager.hook.miles_validate_args(args=args)


def test_plugin_import_is_light():
    code = ("import sys, miles_rm_math.plugin; "
            "print(sorted(m for m in ('sympy', 'math_verify', 'torch', 'latex2sympy2_extended') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
