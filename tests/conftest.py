"""Test-session set-up shared by every test folder: hermetic environment, tiny models, prompt files.

Nothing a test does may write under the home directory: Ray, wandb, Hugging Face and SGLang caches are
pointed at the session's temporary directory before anything imports them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

_HERMETIC_ROOT = Path(tempfile.mkdtemp(prefix="miles-tests-"))
for _var, _sub in {
    "HF_HOME": "hf", "WANDB_DIR": "wandb", "WANDB_CACHE_DIR": "wandb-cache", "WANDB_CONFIG_DIR": "wandb-config",
    "WANDB_DATA_DIR": "wandb-data", "SGLANG_CACHE_DIR": "sglang", "TRITON_CACHE_DIR": "triton",
    "MPLCONFIGDIR": "mpl", "XDG_CACHE_HOME": "xdg-cache", "RAY_TMPDIR": "ray",
}.items():
    os.environ.setdefault(_var, str(_HERMETIC_ROOT / _sub))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory) -> Path:
    """A random-init tiny Qwen3 HF checkpoint with the local character tokenizer (seed 0)."""
    from miles_models_qwen.presets import create_checkpoint

    return create_checkpoint("qwen3", "tiny", tmp_path_factory.mktemp("tiny-qwen3") / "model", seed=0)


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """``write_jsonl(rows_or_text, name) -> path``: a prompt file; a string is written as is (for malformed files)."""

    def write(rows, name: str = "prompts.jsonl") -> str:
        path = tmp_path / name
        text = rows if isinstance(rows, str) else "".join(json.dumps(row) + "\n" for row in rows)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def pytest_collection_modifyitems(config, items):
    """A GPU test under tests/fast/ is a collection error: move it to tests/fast-gpu/."""
    for item in items:
        path = Path(str(item.fspath))
        if "fast" in path.parts and item.get_closest_marker("gpu") is not None:
            raise pytest.UsageError(f"{path}: GPU tests belong in tests/fast-gpu/, not tests/fast/")
