"""``miles plugins [--json] [--all]``: every status, what each plugin provides, conflicts, and no heavy imports."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest
from miles_core.cli import plugins_command
from miles_core.plugins.selection import PluginSelection
from plugin_test_support import RAISES_AT_IMPORT, reward_provider

ROW_KEYS = {"name", "distribution", "version", "status", "error", "provides", "origin", "target", "hooks"}


def _run(*argv, options=(), env=None, **extra):
    """Parse ``miles plugins ARGV`` with the real subparser and run it; returns (code, stdout)."""
    parser = argparse.ArgumentParser(prog="miles")
    plugins_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plugins", *argv])
    args.plugin_selection = PluginSelection.from_options(options, environ=env or {}).to_dict()
    for key, value in extra.items():
        setattr(args, key, value)
    out = io.StringIO()
    code = args.func(args, out=out)
    return code, out.getvalue()


@pytest.fixture
def every_status(good_and_other):
    good_and_other("miles-fake-bomb", "1.0", {"fake_bomb": "fake_bomb_plugin"}, {"fake_bomb_plugin": RAISES_AT_IMPORT})
    good_and_other("miles-fake-off", "2.0", {"fake_off": "fake_off_plugin"}, {"fake_off_plugin": reward_provider("x")})
    return good_and_other


def _line(output, name):
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_table_shows_every_status(every_status):
    # fake_bomb is autoloaded, so it fails with a warning rather than an error.
    code, output = _run(options=["no:fake_other", "fake_good"])
    assert code == 0
    assert output.splitlines()[0] == "Miles plugins (autoload on; -p: fake_good; blocked: fake_other)"
    assert output.splitlines()[1].split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"]
    assert _line(output, "fake_good").split() == ["fake_good", "miles-fake-good", "1.2.3", "active",
                                                  "reward_models:", "fake_exact"]
    assert _line(output, "fake_other").split()[:4] == ["fake_other", "miles-fake-other", "0.4", "blocked"]
    assert _line(output, "fake_bomb").split() == ["fake_bomb", "miles-fake-bomb", "1.0", "failed",
                                                  "RuntimeError:", "boom", "at", "import"]
    code, output = _run(options=["fake_good"], env={"MILES_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert " ".join(_line(output, "fake_off").split()) == (
        "fake_off miles-fake-off 2.0 not loaded (autoload off; load with -p fake_off)")


def test_json_has_the_same_fields(every_status):
    code, output = _run("--json", options=["no:fake_other"])
    report = json.loads(output)
    assert code == 0 and set(report) == {"selection", "plugins", "conflicts"}
    rows = {row["name"]: row for row in report["plugins"]}
    assert all(set(row) == ROW_KEYS for row in rows.values())
    assert rows["fake_good"] == {
        "name": "fake_good", "distribution": "miles-fake-good", "version": "1.2.3", "status": "active",
        "error": None, "origin": "entry-point", "target": "fake_good_plugin",
        "provides": {"reward_models": ["fake_exact"]}, "hooks": ["miles_reward_models"]}
    assert (rows["fake_other"]["status"], rows["fake_bomb"]["status"]) == ("blocked", "failed")
    assert rows["fake_bomb"]["error"] == "RuntimeError: boom at import"
    assert report["selection"]["blocked"] == ["fake_other"] and report["conflicts"] is None


def test_all_lists_every_spec_with_description_and_source(good_and_other):
    code, output = _run("--all")
    assert code == 0
    assert "reward_models:" in output.splitlines()
    line = next(line for line in output.splitlines() if line.strip().startswith("fake_exact "))
    assert line.split("  ")[-1] == "[miles-fake-good 1.2.3 (plugin 'fake_good')]"
    assert "1 if the response equals the label" in line
    code, output = _run("--all", "--json")
    specs = {spec["name"]: spec for spec in json.loads(output)["specs"]}
    assert specs["fake_keep_all"] == {
        "kind": "filters", "name": "fake_keep_all", "description": "Keep every group", "plugin": "fake_other",
        "distribution": "miles-fake-other", "version": "0.4", "source": "miles-fake-other 0.4 (plugin 'fake_other')"}


def test_path_flag_specs_are_listed_under_their_flag(good_and_other):
    good_and_other("flag-code", "1", {}, {"flag_code": "def rm(args, sample):\n    return 1.0\n"})
    code, output = _run("--json", "--all", custom_rm_path="flag_code:rm")
    report = json.loads(output)
    row = next(row for row in report["plugins"] if row["name"] == "--custom-rm-path")
    assert (row["origin"], row["target"], row["provides"], row["status"]) == (
        "flag", "flag_code:rm", {"reward_models": ["flag_code.rm"]}, "active")
    spec = next(spec for spec in report["specs"] if spec["name"] == "flag_code.rm")
    assert spec["source"] == "--custom-rm-path flag_code:rm"
    code, output = _run(custom_rm_path="flag_code:rm")
    assert _line(output, "--custom-rm-path").split() == ["--custom-rm-path", "(flag)", "-", "active",
                                                          "reward_models:", "flag_code.rm"]


def test_conflicts_are_shown_and_exit_one(miles_fake_distribution):
    for ep in ("dup_a", "dup_b"):
        miles_fake_distribution(f"miles-{ep}", "1.0", {ep: f"{ep}_mod"}, {f"{ep}_mod": reward_provider("same")})
    code, output = _run()
    assert code == 1
    assert "conflicting plugins for miles_reward_models" in output
    assert "-p no:dup_a / -p no:dup_b" in output


def test_a_bad_selection_is_an_error_on_stderr(capsys):
    code, output = _run(options=["nothing_like_this_xyz"])
    assert code == 1 and output == ""
    assert capsys.readouterr().err.startswith(
        "miles plugins: error: -p nothing_like_this_xyz: no installed plugin, distribution or importable module")


def test_listing_imports_no_heavy_library():
    script = (
        "import argparse, io, sys\n"
        "from miles_core.cli import plugins_command\n"
        "assert plugins_command.run(argparse.Namespace(json=True, all=True), out=io.StringIO()) == 0\n"
        "heavy = sorted(m for m in ('torch', 'ray', 'transformers', 'fastapi', 'megatron', 'uvicorn') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""
