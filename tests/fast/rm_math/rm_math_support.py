"""Helpers of the miles-rm-math tests (a module name of its own: every test folder shares sys.path)."""

from __future__ import annotations

import asyncio
from typing import Any

from miles_core import Sample


def score_with(manager, args: Any, rm_type: str, response: str, label: Any) -> Any:
    """Score one sample with the registered ``rm_type`` exactly as the rollout awaits it."""
    spec = manager.get("reward_models", rm_type, flag="--rm-type")
    sample = Sample(index=0, prompt="q", response=response, label=label)
    return asyncio.run(spec.fn(args, sample))
