"""The four-knob invariant: any three fill the fourth; inconsistent or fractional values show the arithmetic."""

from __future__ import annotations

import pytest
from miles_core.config.batch_knobs import resolve_batch_knobs
from miles_core.config.errors import ConfigError

KNOBS = ("rollout_batch_size", "n_samples_per_prompt", "global_batch_size", "num_steps_per_rollout")


def resolve(**passed):
    values = {k: passed.get(k) for k in KNOBS}
    return resolve_batch_knobs(values, set(passed))


@pytest.mark.parametrize(
    "passed, derived, value",
    [
        (dict(n_samples_per_prompt=8, global_batch_size=32, num_steps_per_rollout=2), "rollout_batch_size", 8),
        (dict(rollout_batch_size=8, global_batch_size=32, num_steps_per_rollout=2), "n_samples_per_prompt", 8),
        (dict(rollout_batch_size=8, n_samples_per_prompt=8, num_steps_per_rollout=2), "global_batch_size", 32),
        (dict(rollout_batch_size=8, n_samples_per_prompt=8, global_batch_size=32), "num_steps_per_rollout", 2),
    ],
)
def test_any_three_fill_the_fourth(passed, derived, value):
    resolution = resolve(**passed)
    assert resolution.values[derived] == value
    assert resolution.derived == derived
    assert resolution.values["rollout_batch_size"] * resolution.values["n_samples_per_prompt"] == (
        resolution.values["global_batch_size"] * resolution.values["num_steps_per_rollout"])
    assert all(resolution.source[k] == "passed" for k in passed)


def test_four_consistent_values_pass():
    resolution = resolve(rollout_batch_size=16, n_samples_per_prompt=8, global_batch_size=64, num_steps_per_rollout=2)
    assert resolution.derived is None
    assert resolution.samples_per_rollout == 128


def test_four_inconsistent_values_show_the_arithmetic():
    with pytest.raises(ConfigError) as info:
        resolve(rollout_batch_size=16, n_samples_per_prompt=8, global_batch_size=48, num_steps_per_rollout=3)
    assert str(info.value).startswith(
        "--rollout-batch-size 16 × --n-samples-per-prompt 8 = 128 samples per rollout, but "
        "--global-batch-size 48 × --num-steps-per-rollout 3 = 144 samples trained per rollout."
    )


@pytest.mark.parametrize(
    "passed, message",
    [
        (dict(rollout_batch_size=16, n_samples_per_prompt=8, global_batch_size=48),
         "--rollout-batch-size 16 × --n-samples-per-prompt 8 = 128 samples per rollout, so --num-steps-per-rollout "
         "would be 128 / --global-batch-size 48 = 2.667, not a whole number."),
        (dict(rollout_batch_size=16, n_samples_per_prompt=8, num_steps_per_rollout=3),
         "--rollout-batch-size 16 × --n-samples-per-prompt 8 = 128 samples per rollout, so --global-batch-size "
         "would be 128 / --num-steps-per-rollout 3 = 42.67, not a whole number."),
        (dict(n_samples_per_prompt=8, global_batch_size=12, num_steps_per_rollout=1),
         "--global-batch-size 12 × --num-steps-per-rollout 1 = 12 samples trained per rollout, so "
         "--rollout-batch-size would be 12 / --n-samples-per-prompt 8 = 1.5, not a whole number."),
        (dict(rollout_batch_size=16, global_batch_size=12, num_steps_per_rollout=1),
         "--global-batch-size 12 × --num-steps-per-rollout 1 = 12 samples trained per rollout, so "
         "--n-samples-per-prompt would be 12 / --rollout-batch-size 16 = 0.75, not a whole number."),
    ],
)
def test_a_derived_knob_that_is_not_whole_is_an_error(passed, message):
    with pytest.raises(ConfigError) as info:
        resolve(**passed)
    assert str(info.value).startswith(message)


def test_fewer_than_three_use_the_defaults_of_n_samples_then_steps():
    only_rollout = resolve(rollout_batch_size=32)
    assert only_rollout.values == dict(rollout_batch_size=32, n_samples_per_prompt=1, global_batch_size=32,
                                       num_steps_per_rollout=1)
    assert only_rollout.source == dict(rollout_batch_size="passed", n_samples_per_prompt="default",
                                       num_steps_per_rollout="default", global_batch_size="derived")
    # Miles derives the steps when the global batch is given (train.py's num_steps = samples // gbs).
    two = resolve(rollout_batch_size=32, global_batch_size=8)
    assert two.values["num_steps_per_rollout"] == 4 and two.source["n_samples_per_prompt"] == "default"
    with_group = resolve(rollout_batch_size=32, n_samples_per_prompt=8)
    assert with_group.values["global_batch_size"] == 256
    only_global = resolve(global_batch_size=64, num_steps_per_rollout=2)
    assert only_global.values["rollout_batch_size"] == 128


def test_default_used_in_a_mismatch_is_marked():
    with pytest.raises(ConfigError) as info:
        resolve(rollout_batch_size=8, n_samples_per_prompt=2, global_batch_size=4, num_steps_per_rollout=1)
    assert "--num-steps-per-rollout 1 = 4" in str(info.value)
    with pytest.raises(ConfigError) as info:
        resolve(rollout_batch_size=3, global_batch_size=2)  # n defaults to 1: 3 / 2 steps
    assert "--n-samples-per-prompt 1 (default) = 3 samples per rollout" in str(info.value)


@pytest.mark.parametrize("passed", [{}, dict(n_samples_per_prompt=8), dict(n_samples_per_prompt=8, num_steps_per_rollout=2)])
def test_no_batch_size_at_all_is_an_error(passed):
    with pytest.raises(ConfigError, match="pass --rollout-batch-size .* or --global-batch-size"):
        resolve(**passed)


def test_parse_and_validate_applies_the_knobs(parse):
    args = parse("--n-samples-per-prompt", "8", "--global-batch-size", "16")
    assert (args.rollout_batch_size, args.n_samples_per_prompt, args.global_batch_size,
            args.num_steps_per_rollout) == (4, 8, 16, 2)
    assert args.batch_knobs == dict(rollout_batch_size="passed", n_samples_per_prompt="passed",
                                    global_batch_size="passed", num_steps_per_rollout="derived")


def test_cli_exits_2_with_the_arithmetic(parse):
    with pytest.raises(ConfigError, match=r"--rollout-batch-size 4 × --n-samples-per-prompt 8 = 32 samples per "
                                          r"rollout, but --global-batch-size 16 × --num-steps-per-rollout 3 = 48"):
        parse("--n-samples-per-prompt", "8", "--global-batch-size", "16", "--num-steps-per-rollout", "3")
