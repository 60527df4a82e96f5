"""Fixtures of the CLI tests: a fake checkpoint and prompts, and the flags that select the fake plugin's specs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The fake plugin module (loaded with ``-p miles_config_fake_plugin``) lives next to the config tests.
FAKE_PLUGIN_DIR = Path(__file__).resolve().parent.parent / "config"
FAKE_PLUGIN = "miles_config_fake_plugin"


@pytest.fixture(autouse=True)
def _fake_plugin_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE_PLUGIN_DIR))
    yield
    sys.modules.pop(FAKE_PLUGIN, None)


@pytest.fixture
def run_flags(tmp_path: Path) -> list[str]:
    """A valid ``miles train`` command line whose every component comes from the fake plugin."""
    from miles_config_fake_plugin import write_fake_checkpoint

    model = write_fake_checkpoint(tmp_path / "model")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Say 7:", "label": "7"}\n')
    return [
        "--hf-checkpoint", str(model), "--prompt-data", str(prompts), "--run-dir", str(tmp_path / "run"),
        "--data-source", "test_source", "--generate-function", "test_gen", "--rollout-function", "test_rollout",
        "--rm-type", "test_rm", "--buffer-filter", "test_buffer", "--advantage-estimator", "test_estimator",
        "--train-backend", "test_backend", "--rollout-engine", "test_engine",
        "--actor-num-gpus-per-node", "2", "--rollout-batch-size", "8", "--n-samples-per-prompt", "4",
        "--num-steps-per-rollout", "2", "--num-rollout", "3",
    ]
