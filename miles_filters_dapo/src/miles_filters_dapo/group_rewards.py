"""The scalar rewards of a group, with dict rewards resolved the way the rest of Miles resolves them.

A dict reward (``dapo`` gives ``{"score", "acc", "pred"}``) is indexed with ``--reward-key`` (or
``--eval-reward-key`` in eval). When neither is set, the default key of the reward model that scored
the sample (``RewardModelSpec.reward_key``, e.g. ``"score"`` for ``dapo``) is used: the sample's
``metadata["rm_type"]``, else ``--rm-type``, looked up once per name in the plugin registry.
"""

from __future__ import annotations

import threading
from typing import Any

from miles_core.data.sample import Sample
from miles_core.rewards.value import reward_key_flag

__all__ = ["reward_key_for", "scalar_reward"]

_spec_keys: dict[tuple[str, str], str | None] = {}
_spec_keys_lock = threading.Lock()


def reward_key_for(args: Any, sample: Sample, *, evaluation: bool = False) -> str | None:
    """The key that picks the scalar out of ``sample.reward`` when it is a dict."""
    key = reward_key_flag(args, evaluation=evaluation)
    if key or not isinstance(sample.reward, dict):
        return key
    rm_type = (sample.metadata or {}).get("rm_type") or getattr(args, "rm_type", None)
    return _spec_default_key(args, rm_type) if rm_type else None


def scalar_reward(args: Any, sample: Sample, *, evaluation: bool = False) -> float:
    """``sample.reward`` as a float (raises with the fix to apply when a dict reward has no key)."""
    return sample.get_reward_value(args, reward_key=reward_key_for(args, sample, evaluation=evaluation))


def _spec_default_key(args: Any, rm_type: str) -> str | None:
    selection = repr(getattr(args, "plugin_selection", None))
    with _spec_keys_lock:
        if (rm_type, selection) in _spec_keys:
            return _spec_keys[(rm_type, selection)]
    from miles_core.plugins.manager import plugin_manager_from_args

    registry = plugin_manager_from_args(args).registry("reward_models")
    key = registry.get(rm_type).reward_key if rm_type in registry else None
    with _spec_keys_lock:
        _spec_keys[(rm_type, selection)] = key
    return key
