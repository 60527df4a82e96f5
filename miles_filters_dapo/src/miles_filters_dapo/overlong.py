"""DAPO's soft overlong punishment, applied to each scored group through ``miles_after_rewards``.

DAPO (Yu et al. 2025, arXiv:2503.14476, "Overlong Reward Shaping", Eq. 13) adds a length penalty to
the rule-based reward so that responses running into the length cap are discouraged smoothly rather
than by the noise of truncation:

    R_length(y) = 0                                  if |y| <= L_max - L_cache
                = ((L_max - L_cache) - |y|) / L_cache if L_max - L_cache < |y| <= L_max
                = -1                                 if |y| > L_max

with ``L_max = --rollout-max-response-len`` (``--eval-max-response-len`` in eval, when set) and
``L_cache = --overlong-buffer-len``; the penalty added is ``--overlong-penalty-factor × R_length``
(the factor is verl's ``overlong_buffer.penalty_factor``; 1.0 is the paper). ``|y|`` is
``sample.response_length``, the number of response tokens.

Per sample the hook keeps the unshaped scalar in ``metadata["raw_reward"]`` (the training batch
reports it as ``raw_reward``) and the penalty in ``metadata["overlong_penalty"]``, then adds the
penalty to the reward (to the ``--reward-key`` entry of a dict reward). A sample already shaped
(it carries ``overlong_penalty``) is left alone, so a group seen twice is not punished twice. Eval
groups are left alone unless ``--overlong-penalty-in-eval``.
"""

from __future__ import annotations

from typing import Any

from miles_core.data.sample import flatten_groups

from miles_filters_dapo.group_rewards import reward_key_for, scalar_reward

__all__ = ["soft_overlong_punishment", "apply_overlong_penalty", "overlong_shaping_enabled"]


def soft_overlong_punishment(response_length: int, max_response_len: int, buffer_len: int) -> float:
    """DAPO's ``R_length`` (Eq. 13): 0, then a linear ramp to -1 over the last ``buffer_len`` tokens, then -1."""
    expected_len = max_response_len - buffer_len
    if response_length <= expected_len:
        return 0.0
    if response_length <= max_response_len:
        return (expected_len - response_length) / buffer_len
    return -1.0


def overlong_shaping_enabled(args: Any, *, evaluation: bool) -> bool:
    if not getattr(args, "overlong_buffer_len", None):
        return False
    return not evaluation or bool(getattr(args, "overlong_penalty_in_eval", False))


def _max_response_len(args: Any, evaluation: bool) -> int:
    eval_len = getattr(args, "eval_max_response_len", None) if evaluation else None
    return int(eval_len or args.rollout_max_response_len)


def apply_overlong_penalty(args: Any, samples: list[Any], evaluation: bool) -> None:
    """Shape the rewards of one scored group in place (a no-op unless ``--overlong-buffer-len`` is set)."""
    if not overlong_shaping_enabled(args, evaluation=evaluation):
        return
    max_response_len = _max_response_len(args, evaluation)
    buffer_len = int(args.overlong_buffer_len)
    factor = float(getattr(args, "overlong_penalty_factor", None) or 1.0)
    for sample in flatten_groups(samples):
        if sample.reward is None or "overlong_penalty" in sample.metadata:
            continue
        raw = scalar_reward(args, sample, evaluation=evaluation)
        penalty = factor * soft_overlong_punishment(sample.response_length, max_response_len, buffer_len)
        sample.metadata.setdefault("raw_reward", raw)
        sample.metadata["overlong_penalty"] = penalty
        if isinstance(sample.reward, dict):
            shaped = dict(sample.reward)
            shaped[reward_key_for(args, sample, evaluation=evaluation)] = raw + penalty
            sample.reward = shaped
        else:
            sample.reward = raw + penalty
