"""DAPO's soft overlong punishment: the formula at its boundaries, the hook, and its flag checks."""

from __future__ import annotations

import argparse

import pytest
from filters_dapo_support import make_group, namespace
from miles_filters_dapo.overlong import soft_overlong_punishment

# L_max = 20 tokens, L_cache = 4: no penalty up to 16, a ramp from 16 to 20, -1 beyond.
L_MAX, L_CACHE = 20, 4


@pytest.mark.parametrize(("length", "expected"), [
    (0, 0.0),
    (16, 0.0),  # |y| = L_max - L_cache: still free
    (17, -0.25),  # (16 - 17) / 4
    (18, -0.5),
    (19, -0.75),
    (20, -1.0),  # |y| = L_max: the ramp ends at -1
    (21, -1.0),  # beyond L_max
    (10_000, -1.0),
])
def test_formula_at_the_boundaries(length, expected):
    assert soft_overlong_punishment(length, L_MAX, L_CACHE) == pytest.approx(expected)


def test_dapo_paper_setting():
    # DAPO: L_max = 20480, L_cache = 4096 → the penalty starts after 16384 tokens
    assert soft_overlong_punishment(16384, 20480, 4096) == 0.0
    assert soft_overlong_punishment(18432, 20480, 4096) == pytest.approx(-0.5)


def _shaping_args(**values) -> argparse.Namespace:
    return namespace(rollout_max_response_len=L_MAX, overlong_buffer_len=L_CACHE, **values)


def test_hook_shapes_rewards_and_keeps_the_raw_reward(dapo_manager):
    group = make_group([1.0, 1.0, 0.0, 0.0], lengths=[10, 18, 20, 25])
    dapo_manager.hook.miles_after_rewards(args=_shaping_args(), samples=group, evaluation=False)
    assert [s.reward for s in group] == pytest.approx([1.0, 0.5, -1.0, -1.0])
    assert [s.metadata["raw_reward"] for s in group] == [1.0, 1.0, 0.0, 0.0]
    assert [s.metadata["overlong_penalty"] for s in group] == pytest.approx([0.0, -0.5, -1.0, -1.0])


def test_penalty_factor_scales_the_penalty(dapo_manager):
    group = make_group([1.0, 1.0], lengths=[18, 30])
    dapo_manager.hook.miles_after_rewards(args=_shaping_args(overlong_penalty_factor=0.5), samples=group,
                                          evaluation=False)
    assert [s.reward for s in group] == pytest.approx([0.75, 0.5])


def test_dict_rewards_are_shaped_under_the_reward_key(dapo_manager):
    group = make_group([{"score": 1.0, "acc": True, "pred": "5"}], lengths=[19])
    dapo_manager.hook.miles_after_rewards(args=_shaping_args(reward_key="score"), samples=group, evaluation=False)
    assert group[0].reward == {"score": pytest.approx(0.25), "acc": True, "pred": "5"}
    assert group[0].metadata["raw_reward"] == 1.0


def test_a_group_is_never_punished_twice(dapo_manager):
    group = make_group([1.0], lengths=[18])
    for _ in range(2):
        dapo_manager.hook.miles_after_rewards(args=_shaping_args(), samples=group, evaluation=False)
    assert group[0].reward == pytest.approx(0.5)


def test_off_by_default_and_in_eval(dapo_manager):
    group = make_group([1.0], lengths=[19])
    dapo_manager.hook.miles_after_rewards(args=namespace(rollout_max_response_len=L_MAX), samples=group,
                                          evaluation=False)
    dapo_manager.hook.miles_after_rewards(args=_shaping_args(), samples=group, evaluation=True)
    assert group[0].reward == 1.0 and "overlong_penalty" not in group[0].metadata


def test_eval_is_shaped_when_asked_with_the_eval_length(dapo_manager):
    group = make_group([{"score": 1.0}], lengths=[38])
    args = _shaping_args(overlong_penalty_in_eval=True, eval_max_response_len=40, eval_reward_key="score")
    dapo_manager.hook.miles_after_rewards(args=args, samples=group, evaluation=True)
    assert group[0].reward["score"] == pytest.approx(0.5)  # L_max = 40 in eval: (36 - 38) / 4


def test_unscored_samples_are_left_alone(dapo_manager):
    group = make_group([None, 1.0], lengths=[25, 25])
    dapo_manager.hook.miles_after_rewards(args=_shaping_args(), samples=group, evaluation=False)
    assert group[0].reward is None and group[1].reward == 0.0


def _parsed(dapo_manager, argv: list[str], **core_values) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dapo_manager.hook.miles_add_arguments(parser=parser)
    args = parser.parse_args(argv)
    for key, value in namespace(**core_values).__dict__.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


def test_flags_live_in_an_argument_group_named_after_the_package(dapo_manager):
    parser = argparse.ArgumentParser()
    dapo_manager.hook.miles_add_arguments(parser=parser)
    [group] = [g for g in parser._action_groups if g.title == "miles-filters-dapo"]
    assert {a.dest for a in group._group_actions} == {
        "overlong_buffer_len", "overlong_penalty_factor", "overlong_penalty_in_eval"}


@pytest.mark.parametrize(("argv", "core", "message"), [
    (["--overlong-buffer-len", "0"], {"rollout_max_response_len": 20}, "must be a positive number of tokens"),
    (["--overlong-buffer-len", "4"], {}, "needs --rollout-max-response-len"),
    (["--overlong-buffer-len", "20"], {"rollout_max_response_len": 20}, "must be smaller than --rollout-max-response-len 20"),
    (["--overlong-buffer-len", "4", "--overlong-penalty-factor", "0"], {"rollout_max_response_len": 20},
     "--overlong-penalty-factor must be positive"),
    (["--overlong-penalty-factor", "0.5"], {}, "has no effect without --overlong-buffer-len"),
    (["--overlong-penalty-in-eval"], {}, "has no effect without --overlong-buffer-len"),
    (["--overlong-buffer-len", "8", "--overlong-penalty-in-eval"],
     {"rollout_max_response_len": 20, "eval_max_response_len": 8}, "smaller than --eval-max-response-len 8"),
    ([], {"dynamic_sampling_filter": "nonzero_std", "n_samples_per_prompt": 1}, "needs --n-samples-per-prompt of at least 2"),
    ([], {"dynamic_sampling_filter": "check_reward_nonzero_std", "n_samples_per_prompt": 1}, "at least 2"),
])
def test_flag_validation_errors(dapo_manager, argv, core, message):
    args = _parsed(dapo_manager, argv, **core)
    with pytest.raises(ValueError, match=message):
        dapo_manager.hook.miles_validate_args(args=args)


def test_valid_flags_pass(dapo_manager):
    args = _parsed(dapo_manager, ["--overlong-buffer-len", "4", "--overlong-penalty-factor", "1.5"],
                   rollout_max_response_len=20, dynamic_sampling_filter="nonzero_std", n_samples_per_prompt=8)
    dapo_manager.hook.miles_validate_args(args=args)
    assert args.overlong_buffer_len == 4 and args.overlong_penalty_factor == 1.5
