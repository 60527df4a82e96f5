"""Fixtures for the miles-rm-math tests: flags as a run would parse them, and scoring through the registry."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from miles_core import Sample
from miles_core.plugins.manager import PluginSelection, build_plugin_manager


@pytest.fixture(scope="session")
def rm_math_manager():
    """A manager with miles-rm-math loaded from its entry point (and nothing else autoloaded)."""
    return build_plugin_manager(PluginSelection(requested=("miles-rm-math",), autoload=False))


@pytest.fixture(scope="session")
def math_args() -> argparse.Namespace:
    """The flags of miles-rm-math with their defaults, and a generous timeout so a busy CI host never flakes."""
    from miles_rm_math import options

    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    args = parser.parse_args(["--math-verify-timeout", "20", "--math-verify-workers", "2"])
    args.reward_key = None
    return args


def score_with(manager, args: Any, rm_type: str, response: str, label: Any) -> Any:
    """Score one sample with the registered ``rm_type`` exactly as the rollout awaits it."""
    spec = manager.get("reward_models", rm_type, flag="--rm-type")
    sample = Sample(index=0, prompt="q", response=response, label=label)
    return asyncio.run(spec.fn(args, sample))
