"""Flags with their real defaults, for building the ``args`` a filter or reward receives."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_args(miles_plugin_manager):
    """``make_args(**flags)``: the ``miles train`` namespace with every default, plus the given values."""
    from miles_core.config.arguments import build_train_parser

    parser = build_train_parser(miles_plugin_manager)

    def make(**overrides):
        args = parser.parse_args([])
        for dest, value in overrides.items():
            if not hasattr(args, dest):
                raise AttributeError(f"no flag with dest {dest!r}")
            setattr(args, dest, value)
        return args

    return make
