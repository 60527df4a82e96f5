"""The scalar reward of a sample, resolved with ``--reward-key`` (train) or ``--eval-reward-key`` (eval)."""

from __future__ import annotations

from typing import Any

from miles_core.data.sample import Sample

__all__ = ["reward_key_flag", "reward_value", "raw_reward_value"]


def reward_key_flag(args: Any, *, evaluation: bool = False) -> str | None:
    """The key of a dict reward the user asked for: ``--eval-reward-key`` in eval when set, else ``--reward-key``."""
    return (getattr(args, "eval_reward_key", None) if evaluation else None) or getattr(args, "reward_key", None)


def reward_value(args: Any, sample: Sample, *, evaluation: bool = False) -> float:
    """``sample.reward`` as a float; a dict reward is indexed with the reward key."""
    return sample.get_reward_value(args, reward_key=reward_key_flag(args, evaluation=evaluation))


def raw_reward_value(args: Any, sample: Sample, *, evaluation: bool = False) -> float:
    """The reward before shaping: ``metadata["raw_reward"]`` when a ``miles_after_rewards`` hook kept it."""
    raw = (sample.metadata or {}).get("raw_reward")
    if raw is not None:
        if isinstance(raw, dict):
            key = reward_key_flag(args, evaluation=evaluation)
            if not key:
                raise ValueError(f"sample {sample.index}: metadata['raw_reward'] is a dict; set --reward-key")
            return float(raw[key])
        return float(raw)
    return reward_value(args, sample, evaluation=evaluation)
