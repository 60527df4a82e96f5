"""Fixtures for the miles-rm-math tests: a manager with the package from its entry point, and parsed flags."""

from __future__ import annotations

import argparse

import pytest
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
