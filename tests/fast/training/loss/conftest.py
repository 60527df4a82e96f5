"""Helpers for the loss tests: parsed-flag namespaces with Miles's defaults, and estimator specs."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture
def make_args():
    """``make_args(**overrides)`` → a namespace holding every loss flag at Miles's default."""
    from miles_core.training.loss import LOSS_FLAG_DEFAULTS

    def make(**overrides) -> argparse.Namespace:
        values = dict(LOSS_FLAG_DEFAULTS)
        values.update(advantage_estimator="grpo", rollout_max_response_len=None, dr_grpo_divisor=None)
        values.update(overrides)
        return argparse.Namespace(**values)

    return make


@pytest.fixture(scope="session")
def estimators():
    """The built-in estimator specs by name, as the plugin registers them."""
    from miles_core.training import estimators_plugin

    return {spec.name: spec for spec in estimators_plugin.miles_loss_estimators()}
