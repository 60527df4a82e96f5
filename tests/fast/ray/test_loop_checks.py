"""The flag checks of the loop itself (``loop_checks`` plugin): ``--async`` and its bounds."""

from __future__ import annotations

import argparse

import pytest
from miles_core.ray.loop_checks import miles_validate_args


def namespace(**overrides) -> argparse.Namespace:
    values = {"async_mode": True, "colocate": False, "max_weight_staleness": 1, "update_weights_interval": 1,
              "use_critic": False, "use_rollout_logprobs": False, "use_tis": False, "advantage_estimator": "grpo"}
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.mark.parametrize("overrides", [
    {},
    {"update_weights_interval": 2, "max_weight_staleness": 2},
    {"update_weights_interval": 1, "max_weight_staleness": 4},
    {"use_critic": True, "use_tis": True, "advantage_estimator": "ppo"},
    {"use_critic": True, "use_rollout_logprobs": True, "advantage_estimator": "ppo"},
    {"async_mode": False, "colocate": True, "update_weights_interval": 8, "max_weight_staleness": 0},
])
def test_accepted(overrides):
    miles_validate_args(namespace(**overrides))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"colocate": True}, "--async cannot be combined with --colocate"),
    ({"update_weights_interval": 3, "max_weight_staleness": 2},
     "--update-weights-interval 3 is larger than --max-weight-staleness 2"),
    ({"max_weight_staleness": 0}, "--max-weight-staleness 0 with --async"),
    ({"use_critic": True, "advantage_estimator": "ppo"}, "--advantage-estimator ppo with --async needs an off-policy"),
])
def test_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        miles_validate_args(namespace(**overrides))


def test_registered_and_run_by_miles_train(miles_cli, tiny_qwen3, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Say 7:", "label": "7"}\n' * 8)
    common = ["train", "--hf-checkpoint", tiny_qwen3, "--prompt-data", prompts, "--input-key", "prompt",
              "--label-key", "label", "--rm-type", "say_digit", "--rollout-batch-size", "4", "--n-samples-per-prompt",
              "2", "--global-batch-size", "8", "--num-rollout", "2", "--run-dir", tmp_path / "run", "--dry-run"]
    rejected = miles_cli(*common, "--async", "--update-weights-interval", "2")
    assert rejected.exit_code == 2
    assert "--update-weights-interval 2 is larger than --max-weight-staleness 1" in rejected.stderr
    assert "plugin 'loop_checks'" in rejected.stderr
    accepted = miles_cli(*common, "--async", "--update-weights-interval", "2", "--max-weight-staleness", "2")
    assert accepted.exit_code == 0, accepted.stderr
