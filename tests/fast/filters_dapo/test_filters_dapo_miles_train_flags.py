"""The DAPO recipe's flags through the real ``miles train`` parser: both plugins' flags parse, and their
checks stop a bad command line before anything starts, naming the plugin."""

from __future__ import annotations

import pytest
from miles_core.config.errors import ConfigError
from miles_core.config.parse import parse_and_validate
from miles_core.plugins.manager import PluginSelection, build_plugin_manager

pytest.importorskip("miles_rm_math")


@pytest.fixture(scope="module")
def manager():
    return build_plugin_manager(PluginSelection(requested=("miles-rm-math", "miles-filters-dapo"), autoload=False))


@pytest.fixture
def base_argv(tiny_qwen3, tmp_path) -> list[str]:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "1+1?", "label": "2"}\n')
    return ["--hf-checkpoint", str(tiny_qwen3), "--prompt-data", str(prompts), "--actor-num-nodes", "1",
            "--actor-num-gpus-per-node", "1", "--rollout-num-gpus-per-engine", "1", "--rollout-batch-size", "2",
            "--rm-type", "dapo"]


def test_dapo_recipe_parses(manager, base_argv):
    args = parse_and_validate(base_argv + [
        "--n-samples-per-prompt", "4", "--global-batch-size", "8", "--dynamic-sampling-filter", "nonzero_std",
        "--rollout-max-response-len", "64", "--overlong-buffer-len", "16", "--overlong-penalty-factor", "0.5",
        "--math-verify-timeout", "2", "--math-verify-workers", "1"], manager)
    assert (args.overlong_buffer_len, args.overlong_penalty_factor, args.overlong_penalty_in_eval) == (16, 0.5, False)
    assert (args.math_verify_timeout, args.math_verify_workers, args.math_verify_memory_limit_mb) == (2.0, 1, 2048)


@pytest.mark.parametrize(("extra", "message"), [
    (["--n-samples-per-prompt", "1", "--global-batch-size", "2", "--dynamic-sampling-filter", "nonzero_std"],
     "needs --n-samples-per-prompt of at least 2.*checked by plugin 'filters_dapo'"),
    (["--n-samples-per-prompt", "4", "--global-batch-size", "8", "--rollout-max-response-len", "64",
      "--overlong-buffer-len", "64"], "must be smaller than --rollout-max-response-len 64"),
    (["--n-samples-per-prompt", "4", "--global-batch-size", "8", "--overlong-penalty-factor", "2"],
     "has no effect without --overlong-buffer-len"),
    (["--n-samples-per-prompt", "4", "--global-batch-size", "8", "--math-verify-timeout", "-1"],
     "--math-verify-timeout must be positive.*checked by plugin 'rm_math'"),
])
def test_bad_recipes_stop_at_parse_time(manager, base_argv, extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_and_validate(base_argv + extra, manager)
