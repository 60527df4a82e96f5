"""Shared pieces of the rollout tests: flags with their real defaults, prompt files, a fake router."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_router import FakeRouter


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


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="prompts.jsonl") -> str:
        path = Path(tmp_path) / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(scope="module")
def fake_router():
    router = FakeRouter().start()
    yield router
    router.stop()


@pytest.fixture
def router(fake_router):
    fake_router.reset()
    yield fake_router
    fake_router.reset()
