"""``miles_core.testing``: the fixtures plugin authors get from the ``pytest11`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from miles_core.testing import CliResult, make_fake_distribution
from plugin_test_support import RAISES_AT_IMPORT

PRINT_HOME = '''
    import os

    def miles_register_commands(subparsers):
        command = subparsers.add_parser("print-home", help="Print HOME and the MILES_* variables")
        command.set_defaults(func=lambda args: print(os.environ["HOME"], sorted(k for k in os.environ
                                                                              if k.startswith("MILES_"))))
'''


def test_miles_plugin_manager_has_only_the_core(good_and_other, miles_plugin_manager):
    assert miles_plugin_manager.selection.autoload is False
    infos = list(miles_plugin_manager.plugin_infos.values())
    core = [info.status for info in infos if info.distribution == "miles-core"]
    others = {info.name: info.status for info in infos if info.distribution != "miles-core"}
    assert core and set(core) == {"active"}
    assert {"fake_good", "fake_other"} <= set(others) and set(others.values()) == {"not loaded"}


def test_register_plugin_returns_the_name(miles_plugin_manager, register_plugin):
    class Plugin:
        def miles_after_rollout(self, args, rollout_id, samples):
            pass

    assert register_plugin(Plugin()) == "Plugin"
    assert register_plugin(Plugin(), name="second") == "second"
    assert {"Plugin", "second"} <= set(miles_plugin_manager.plugin_infos)


def test_register_plugin_undoes_itself_at_teardown(tmp_path):
    """Run a small suite in a subprocess: the fixtures come from the pytest11 entry point alone."""
    test_file = tmp_path / "test_suite.py"
    test_file.write_text(textwrap.dedent('''
        from miles_core import RewardModelSpec
        from miles_core.plugins.manager import MilesPluginManager
        from miles_core.plugins.selection import PluginSelection

        OTHER = MilesPluginManager(PluginSelection(autoload=False))

        class Plugin:
            def miles_reward_models(self):
                yield RewardModelSpec(name="temp_reward", description="d", fn=lambda args, sample: 1.0)

        def test_register(miles_plugin_manager, register_plugin):
            register_plugin(Plugin(), name="temp")
            register_plugin(Plugin(), name="temp", pm=OTHER)
            assert "temp_reward" in miles_plugin_manager.registry("reward_models")
            assert "temp_reward" in OTHER.registry("reward_models")

        def test_undone(miles_plugin_manager):
            assert "temp_reward" not in miles_plugin_manager.registry("reward_models")
            assert OTHER.get_plugin("temp") is None and "temp" not in OTHER.plugin_infos
            assert "temp_reward" not in OTHER.registry("reward_models")
    '''))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILES_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert "2 passed" in result.stdout, result.stdout + result.stderr


def test_miles_args_has_every_default_and_the_flags_of_registered_plugins(miles_args, register_plugin):
    args = miles_args(rm_type="f1")
    assert args.rm_type == "f1" and args.advantage_estimator == "grpo" and args.rm_timeout == 60.0
    with pytest.raises(AttributeError, match="no flag with dest 'rm_typo'"):
        miles_args(rm_typo="f1")

    class Plugin:
        def miles_add_arguments(self, parser):
            parser.add_argument("--my-plugin-knob", type=int, default=3)

    register_plugin(Plugin(), name="knob")
    assert miles_args().my_plugin_knob == 3 and miles_args(my_plugin_knob=5).my_plugin_knob == 5


def test_miles_cli_runs_in_process_and_clears_the_environment(miles_cli, miles_fake_distribution, monkeypatch,
                                                              tmp_path):
    miles_fake_distribution("miles-print-home", "1.0", {"print_home": "print_home_plugin"},
                            {"print_home_plugin": PRINT_HOME})
    monkeypatch.setenv("MILES_PLUGINS", "nothing_like_this_xyz")  # would be an error if the CLI saw it
    result = miles_cli("print-home")
    assert isinstance(result, CliResult) and result.exit_code == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'home'} []\n"
    assert os.environ["MILES_PLUGINS"] == "nothing_like_this_xyz"  # restored for the rest of the test

    result = miles_cli(["print-home"], env={"MILES_STRICT_PLUGINS": "1"})
    assert result.stdout.endswith("['MILES_STRICT_PLUGINS']\n")


def test_miles_cli_plugins_json(miles_cli, good_and_other):
    result = miles_cli("plugins", "--json", env={"MILES_PLUGINS": "fake_good"})
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()["plugins"]}
    assert rows["fake_good"]["status"] == "active" and rows["fake_other"]["status"] == "not loaded"
    assert result.json()["selection"]["env_requested"] == ["fake_good"]


def test_miles_cli_shows_warnings_and_errors_on_stderr(miles_cli, miles_fake_distribution):
    miles_fake_distribution("miles-fake-bomb", "1.0", {"fake_bomb": "fake_bomb_plugin"},
                            {"fake_bomb_plugin": RAISES_AT_IMPORT})
    result = miles_cli("plugins")
    assert result.exit_code == 0
    assert ("plugin 'fake_bomb' from miles-fake-bomb 1.0 failed to load and is skipped: "
            "RuntimeError: boom at import") in result.stderr
    assert "fake_bomb" in result.stdout and "failed" in result.stdout

    result = miles_cli("-p", "fake_bomb", "plugins")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("miles: error: plugin 'fake_bomb' from miles-fake-bomb 1.0 failed to load: ")


def test_make_fake_distribution_writes_an_installable_looking_tree(tmp_path):
    site = make_fake_distribution(
        tmp_path / "site", "My.Plugin", "2.1",
        {"miles": {"mine": "my_pkg.plugin"}, "console_scripts": {"my-tool": "my_pkg.cli:main"}},
        {"my_pkg.plugin": "    X = 1\n", "my_pkg.cli": "def main():\n    return 0\n"})
    dist_info = site / "my_plugin-2.1.dist-info"
    assert (dist_info / "METADATA").read_text() == "Metadata-Version: 2.1\nName: My.Plugin\nVersion: 2.1\n"
    assert (dist_info / "entry_points.txt").read_text() == (
        "[miles]\nmine = my_pkg.plugin\n\n[console_scripts]\nmy-tool = my_pkg.cli:main\n")
    assert (site / "my_pkg" / "__init__.py").read_text() == ""
    assert (site / "my_pkg" / "plugin.py").read_text() == "X = 1\n"
    record = (dist_info / "RECORD").read_text().splitlines()
    assert "my_pkg/plugin.py,," in record and "my_pkg/__init__.py,," in record

    script = ("import importlib.metadata as m; d = m.distribution('My.Plugin');"
              "print(d.version, [e.value for e in d.entry_points if e.group == 'miles'],"
              " m.packages_distributions()['my_pkg'])")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    assert out == "2.1 ['my_pkg.plugin'] ['My.Plugin']\n"
