"""Fixtures for the miles-filters-dapo tests: a manager with the package loaded from its entry point."""

from __future__ import annotations

import pytest
from miles_core.plugins.manager import PluginSelection, build_plugin_manager


@pytest.fixture(scope="session")
def dapo_manager():
    return build_plugin_manager(PluginSelection(requested=("miles-filters-dapo",), autoload=False))
