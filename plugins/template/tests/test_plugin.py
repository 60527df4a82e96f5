"""The plugin as Miles sees it, tested with the fixtures of ``miles_core.testing`` (no install needed)."""

import argparse

import pytest
from miles_core.plugins.manager import build_plugin_manager
from miles_core.plugins.selection import PluginSelection
from miles_plugin_template import plugin
from miles_plugin_template.keyword_reward import keyword_match_reward
from miles_plugin_template.truncation_filter import truncation_limit


def test_registers_its_reward_and_filter(miles_plugin_manager, register_plugin):
    register_plugin(plugin, name="template")
    reward = miles_plugin_manager.get("reward_models", "keyword_match", flag="--rm-type")
    assert reward.fn is keyword_match_reward and not reward.batched
    dynamic_filter = miles_plugin_manager.get("filters", "truncation_limit")
    assert (dynamic_filter.fn, dynamic_filter.stage) == (truncation_limit, "dynamic_sampling")
    assert miles_plugin_manager.provenance("reward_models", "keyword_match").plugin == "template"


def test_adds_and_validates_its_flags(miles_plugin_manager, register_plugin):
    register_plugin(plugin, name="template")
    parser = argparse.ArgumentParser()
    miles_plugin_manager.hook.miles_add_arguments(parser=parser)
    args = parser.parse_args(["--keyword-match-mode", "all", "--max-truncated-fraction", "0.25"])
    assert (args.keyword_match_mode, args.keyword_match_case_sensitive, args.max_truncated_fraction) == ("all", False, 0.25)
    miles_plugin_manager.hook.miles_validate_args(args=args)
    with pytest.raises(ValueError, match=r"^--max-truncated-fraction must be between 0 and 1, got 1.5$"):
        miles_plugin_manager.hook.miles_validate_args(args=parser.parse_args(["--max-truncated-fraction", "1.5"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--keyword-match-mode", "most"])


def test_discovered_through_its_entry_point(miles_fake_distribution):
    """What `pip install` does, simulated: a dist-info declaring the entry point of pyproject.toml."""
    miles_fake_distribution("miles-plugin-template-test-copy", "0.1.0", {"template_copy": "miles_plugin_template.plugin"})
    pm = build_plugin_manager(PluginSelection(requested=("template_copy",), autoload=False))
    assert pm.plugin_infos["template_copy"].provides == {
        "reward_models": ["keyword_match"], "filters": ["truncation_limit"]}
    blocked = build_plugin_manager(PluginSelection(blocked=("template_copy",), autoload=True))
    assert blocked.plugin_infos["template_copy"].status == "blocked"


def test_listed_by_miles_plugins(miles_cli, miles_fake_distribution):
    """The CLI in-process, isolated from your shell's MILES_* variables and HOME."""
    miles_fake_distribution("my-copy", "0.1.0", {"template_copy": "miles_plugin_template.plugin"})
    result = miles_cli("plugins", "--json", env={"MILES_PLUGINS": "template_copy"})
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()["plugins"]}
    assert rows["template_copy"]["status"] == "active"
    assert rows["template_copy"]["provides"]["reward_models"] == ["keyword_match"]
