"""Fixtures of the config tests: a bare plugin manager with fake specs, a fake checkpoint and prompt file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # miles_config_fake_plugin, also used by tests/fast/cli

import miles_config_fake_plugin as fake  # noqa: E402
from miles_core.config import parse_and_validate  # noqa: E402
from miles_core.plugins.manager import MilesPluginManager  # noqa: E402


@pytest.fixture
def bare_pm() -> MilesPluginManager:
    """A manager with no installed plugin loaded: only the fake specs (test_* and the default names)."""
    pm = MilesPluginManager()
    pm.register_plugin(fake.COMPONENTS_PLUGIN, name="fake_components")
    pm.register_plugin(fake.DEFAULT_NAMES_PLUGIN, name="fake_defaults")
    return pm


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return fake.write_fake_checkpoint(tmp_path / "model")


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "1+1=", "label": "2"}\n')
    return path


@pytest.fixture
def base_argv(model_dir: Path, prompt_file: Path, tmp_path: Path) -> list[str]:
    """The smallest valid command line (one actor rank so any global batch splits)."""
    return ["--hf-checkpoint", str(model_dir), "--prompt-data", str(prompt_file), "--rollout-batch-size", "4",
            "--actor-num-gpus-per-node", "1", "--run-dir", str(tmp_path / "run")]


@pytest.fixture
def parse(bare_pm, base_argv):
    """``parse(*flags)``: parse_and_validate(base_argv + flags) with the bare manager."""

    def _parse(*flags: str, base: bool = True, allow_warnings: bool = False, **kwargs):
        with warnings.catch_warnings():
            # An unexpected ConfigWarning fails the test; tests expecting one use pytest.warns + allow_warnings.
            warnings.simplefilter("always" if allow_warnings else "error")
            return parse_and_validate([*(base_argv if base else []), *flags], bare_pm, **kwargs)

    return _parse
