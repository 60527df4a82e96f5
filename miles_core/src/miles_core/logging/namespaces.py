"""Metric namespaces and their step axes, as Miles logs them.

A metric key carries its namespace (``train/loss``, ``rollout/raw_reward``, ``perf/rollout_time``,
``eval/gsm8k``). Each namespace is plotted against its own step: ``train/*`` against ``train/step``
(one per optimizer step), ``eval/*`` against ``eval/step``, everything else against ``rollout/step``.
"""

from __future__ import annotations

NAMESPACES = ("train", "rollout", "perf", "eval", "multi_turn", "passrate")

STEP_KEYS = {
    "train": "train/step",
    "eval": "eval/step",
    "rollout": "rollout/step",
    "perf": "rollout/step",
    "multi_turn": "rollout/step",
    "passrate": "rollout/step",
}


def namespace_of(key: str) -> str:
    """The namespace of a metric key; keys without a known namespace belong to ``rollout``."""
    head = key.split("/", 1)[0]
    return head if head in STEP_KEYS and "/" in key else "rollout"


def step_key_of(key: str) -> str:
    return STEP_KEYS[namespace_of(key)]
