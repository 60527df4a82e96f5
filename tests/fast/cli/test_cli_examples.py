"""Every shipped ``examples/*.args`` file validates with the installed first-party plugins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.args"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_validates(miles_cli, example, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Say 7:", "label": "7"}\n')
    result = miles_cli("train", f"@{example}", "--hf-checkpoint", model, "--prompt-data", prompts,
                       "--run-dir", tmp_path / "run", "--save", tmp_path / "ckpt", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "dry run: nothing started." in result.stdout


def test_there_are_examples():
    assert {path.name for path in EXAMPLES} >= {"demo.args", "qwen3-grpo-math.args"}
