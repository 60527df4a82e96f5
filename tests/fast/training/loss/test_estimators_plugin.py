"""The plugin module: registration through the entry point, its flags, its checks, and no torch at import."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from miles_core.training import estimators_plugin as plugin


def test_registered_through_the_entry_point():
    from miles_core.plugins.manager import build_plugin_manager

    pm = build_plugin_manager()
    registry = pm.registry("loss_estimators")
    assert set(registry.names()) >= {
        "grpo", "gspo", "ppo", "reinforce_plus_plus", "reinforce_plus_plus_baseline", "on_policy_distillation"}
    assert pm.provenance("loss_estimators", "grpo").distribution == "miles-core"


def test_spec_fields(estimators):
    assert estimators["grpo"].reward_normalization == "group_mean_std"
    assert estimators["gspo"].sequence_level_ratio and estimators["gspo"].reward_normalization == "group_mean_std"
    assert estimators["ppo"].needs_critic and estimators["ppo"].reward_normalization == "none"
    assert estimators["reinforce_plus_plus"].reward_normalization == "none"
    assert estimators["reinforce_plus_plus_baseline"].reward_normalization == "group_mean"
    assert estimators["on_policy_distillation"].needs_teacher
    assert not any(s.sequence_level_ratio for n, s in estimators.items() if n != "gspo")


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, miles_core.training.estimators_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_adds_only_its_own_flag_and_tolerates_a_core_definition():
    parser = argparse.ArgumentParser()
    plugin.miles_add_arguments(parser)
    assert parser.parse_args(["--dr-grpo-divisor", "512"]).dr_grpo_divisor == 512
    assert parser.parse_args([]).dr_grpo_divisor is None
    plugin.miles_add_arguments(parser)  # a second definition would be an argparse error; it is skipped


def _args(**values):
    base = {"advantage_estimator": "grpo", "kl_coef": 0.0, "normalize_advantages": False, "loss_type": "policy_loss"}
    base.update(values)
    return argparse.Namespace(**base)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"advantage_estimator": "reinforce_plus_plus"}, "needs --normalize-advantages"),
        ({"advantage_estimator": "reinforce_plus_plus_baseline"}, "needs --normalize-advantages"),
        ({"entropy_coef": 0.01, "loss_type": "sft_loss"}, "policy_loss only"),
        ({"custom_pg_loss_reducer_function_path": "miles_core.training.reducers:dr_grpo"}, "--dr-grpo-divisor"),
    ],
)
def test_validation_errors_name_the_flag(values, message):
    with pytest.raises(ValueError, match=message):
        plugin.miles_validate_args(_args(**values))


def test_validation_accepts_good_settings():
    plugin.miles_validate_args(_args(advantage_estimator="reinforce_plus_plus", normalize_advantages=True, kl_coef=0.01))
    plugin.miles_validate_args(_args(custom_pg_loss_reducer_function_path="miles_core.training.reducers.dr_grpo",
                                     rollout_max_response_len=1024))


def test_kl_coef_with_grpo_warns_that_it_is_ignored():
    from miles_core.config.notices import ConfigWarning

    with pytest.warns(ConfigWarning, match="ignored"):
        plugin.miles_validate_args(_args(kl_coef=0.1))


def test_lazy_wrapper_calls_the_math(make_args):
    batch = {"rewards": [2.0], "loss_masks": [[1, 1]]}
    plugin._lazy("grpo")(make_args(), batch)
    assert batch["advantages"][0].tolist() == [2.0, 2.0]
