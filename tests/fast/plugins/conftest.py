"""Fixtures of the plugin-system tests (helpers live in ``plugin_test_support``)."""

from __future__ import annotations

from typing import Any

import pytest
from plugin_test_support import GOOD_REWARD, OTHER_FILTER


@pytest.fixture
def good_and_other(miles_fake_distribution) -> Any:
    """Two healthy fake distributions: miles-fake-good (``fake_good``) and miles-fake-other (``fake_other``)."""
    miles_fake_distribution("miles-fake-good", "1.2.3", {"fake_good": "fake_good_plugin"},
                            {"fake_good_plugin": GOOD_REWARD})
    miles_fake_distribution("miles-fake-other", "0.4", {"fake_other": "fake_other_plugin"},
                            {"fake_other_plugin": OTHER_FILTER})
    return miles_fake_distribution
