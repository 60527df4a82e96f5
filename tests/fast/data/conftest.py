"""Shared pieces of the data tests: flags with their real defaults, and prompt files in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def make_args(miles_plugin_manager, tmp_path):
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
    """``write_jsonl(rows_or_text, name)``: a prompt file; a string is written as is (for malformed files)."""

    def write(rows, name="prompts.jsonl") -> str:
        path = Path(tmp_path) / name
        text = rows if isinstance(rows, str) else "".join(json.dumps(row) + "\n" for row in rows)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write
