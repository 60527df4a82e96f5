"""Every flag of Miles's complete reference is accepted, shown in --help with its default, and typed."""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import pytest
from miles_core.config.arguments import build_train_parser
from miles_core.config.parse import parse_train_args
from miles_core.config.parser import format_default

REFERENCE = Path(__file__).with_name("flag_reference.tsv")
ROWS = [row for row in csv.DictReader((line for line in REFERENCE.open() if not line.startswith("#")), delimiter="\t")]
FLAG_ROWS = [row for row in ROWS if row["type"] != "passthrough"]

#: Documented deviations from the reference's default (see --help of each flag and the README).
DEFAULT_DEVIATIONS = {"--train-backend": "fsdp"}
#: Reference defaults that mean "no value; derived or the library's own default".
UNSET = {"–", "derived", "Megatron default", "off"}
#: Selection flags: the reference lists them as enums, Miles checks them against the plugin registries.
REGISTRY_SELECTED = {"--train-backend", "--advantage-estimator", "--rm-type"}


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_train_parser()


@pytest.fixture(scope="module")
def help_blocks(parser) -> dict[str, str]:
    """``--flag`` → its help block (the lines from the flag to the next flag) of ``miles train --help``."""
    text = parser.format_help()
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^  (-\w, )?(--[\w-]+)", line)
        if match:
            current = match.group(2)
            blocks[current] = ""
        elif not line.strip() or not line.startswith("   "):
            current = None
        if current:
            blocks[current] += " " + line.strip()
    return blocks


def test_reference_has_every_group():
    groups = {row["group"] for row in ROWS}
    assert groups == {
        "Cluster", "Model and checkpoints", "Rollout: data and batching", "Rollout: sampling", "Eval", "Parallelism",
        "RL algorithm", "Optimizer", "Reward and filters", "SGLang and router", "MTP / speculative decoding",
        "Fault tolerance", "Async / partial rollout", "Logging", "Profiling", "Debugging",
    }
    assert len(FLAG_ROWS) == 113


def _action(parser, flag):
    action = parser._option_string_actions.get(flag)
    assert action is not None, f"{flag} is not defined"
    return action


def _group_title(parser, action):
    return next(g.title for g in parser._action_groups if action in g._group_actions)


def _sample_value(row, action) -> tuple[list[str], object]:
    """Command-line words for the flag and the Python value they must parse to."""
    flag, kind = row["flag"], row["type"]
    if kind == "flag":
        return [flag], not action.default
    if kind == "int":
        return [flag, "3"], 3
    if kind == "float":
        return [flag, "0.5"], 0.5
    if kind in ("str", "path"):
        return [flag, "some/value"], "some/value"
    if kind == "enum":
        if flag in REGISTRY_SELECTED:
            return [flag, "my_plugin_name"], "my_plugin_name"
        choice = action.choices[-1]
        return [flag, choice], choice
    if kind == "enum+":
        return [flag, *action.choices[:2]], list(action.choices[:2])
    if kind == "str+":
        return [flag, "a", "b"], ["a", "b"]
    if kind == "int+":
        return [flag, "1", "2"], [1, 2]
    if kind == "<module> <fn>":
        return [flag, "my_pkg.models", "get_spec"], ["my_pkg.models", "get_spec"]
    raise AssertionError(f"unknown reference type {kind!r} of {flag}")


def _expected_default(row, action):
    flag, kind, default = row["flag"], row["type"], row["default"]
    if flag in DEFAULT_DEVIATIONS:
        return DEFAULT_DEVIATIONS[flag]
    if kind == "flag":
        return action.default  # off: no value when absent (store_true False, store_false True for a --no- flag)
    if default in UNSET:
        return None
    if kind == "int":
        return int(default)
    if kind == "float":
        return float(default)
    if kind == "enum+":
        return default.strip("[]").split(",")
    return default


@pytest.mark.parametrize("row", FLAG_ROWS, ids=[row["flag"] for row in FLAG_ROWS])
def test_flag_is_accepted_with_reference_type_default_group_and_help(row, parser, help_blocks):
    action = _action(parser, row["flag"])
    assert _group_title(parser, action) == row["group"]
    words, expected = _sample_value(row, action)
    args, passed = parse_train_args(words, pm=None, parser=parser)
    assert getattr(args, action.dest) == expected
    assert type(getattr(args, action.dest)) is type(expected)
    assert action.dest in passed

    default = _expected_default(row, action)
    assert action.default == default
    if row["type"] == "flag":
        assert isinstance(action.default, bool)
    block = help_blocks[row["flag"]]
    assert len(block) > len(row["flag"]) + 10, f"{row['flag']} has no help text"
    if default is not None and row["type"] != "flag":
        assert f"(default: {format_default(default)})" in block


def test_passthrough_rows_are_collected(parser):
    args, _ = parse_train_args(["--sglang-log-level", "INFO", "--router-policy", "round_robin"], pm=None, parser=parser)
    assert args.sglang_server_args == {"log-level": "INFO"}
    assert args.router_args == {"policy": "round_robin"}
