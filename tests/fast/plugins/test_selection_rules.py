"""Which plugins load: autoload, -p (three forms), -p no:, MILES_PLUGINS, MILES_DISABLE_PLUGIN_AUTOLOAD.

Every test installs fake distributions (real ``.dist-info`` folders on ``sys.path``), so discovery goes
through ``importlib.metadata`` exactly as for a pip-installed plugin.
"""

from __future__ import annotations

import sys
import warnings

import pytest
from miles_core.plugins.errors import MilesPluginWarning, PluginError
from miles_core.plugins.selection import PluginSelection
from plugin_test_support import GOOD_REWARD, RAISES_AT_IMPORT, build


def _status(pm, name):
    return pm.plugin_infos[name].status


def test_autoload_loads_installed_plugins_with_provenance(good_and_other):
    pm = build()
    info = pm.plugin_infos["fake_good"]
    assert (info.status, info.distribution, info.version, info.origin, info.target) == (
        "active", "miles-fake-good", "1.2.3", "entry-point", "fake_good_plugin")
    assert info.provides == {"reward_models": ["fake_exact"]}
    assert info.hooks == ["miles_reward_models"]
    provenance = pm.provenance("reward_models", "fake_exact")
    assert provenance.describe() == "miles-fake-good 1.2.3 (plugin 'fake_good')"
    assert "fake_keep_all" in pm.registry("filters")


def test_core_builtins_load_even_without_autoload(good_and_other):
    pm = build(disable_autoload=True)
    core = [info for info in pm.plugin_infos.values() if info.distribution == "miles-core"]
    assert core, "miles-core declares its built-ins as entry points of group 'miles'"
    assert {info.status for info in core} == {"active"}


def test_disable_plugin_autoload_flag_leaves_plugins_unimported(good_and_other):
    pm = build(disable_autoload=True)
    assert _status(pm, "fake_good") == "not loaded"
    assert _status(pm, "fake_other") == "not loaded"
    assert "fake_good_plugin" not in sys.modules
    assert "fake_exact" not in pm.registry("reward_models")


@pytest.mark.parametrize("env_value", ["1", "true", "yes"])
def test_disable_autoload_environment_variable(good_and_other, env_value):
    pm = build(env={"MILES_DISABLE_PLUGIN_AUTOLOAD": env_value})
    assert pm.selection.autoload is False
    assert _status(pm, "fake_good") == "not loaded"


def test_disable_autoload_environment_variable_false_values(good_and_other):
    for value in ("0", "false", "", "off"):
        assert build(env={"MILES_DISABLE_PLUGIN_AUTOLOAD": value}).selection.autoload is True


@pytest.mark.parametrize("name", ["fake_good", "miles-fake-good", "MILES_FAKE_GOOD", "fake_good_plugin"])
def test_dash_p_by_entry_point_distribution_or_module(good_and_other, name):
    pm = build([name], disable_autoload=True)
    assert _status(pm, "fake_good") == "active"
    assert _status(pm, "fake_other") == "not loaded"
    assert pm.get("reward_models", "fake_exact").name == "fake_exact"


def test_dash_p_module_path_not_declared_as_entry_point(miles_fake_distribution):
    """``-p pkg.module``: any importable module is a plugin; its distribution is found from RECORD."""
    miles_fake_distribution("miles-loose", "2.0", {}, {"loose_pkg.hooks": GOOD_REWARD})
    pm = build(["loose_pkg.hooks"], disable_autoload=True)
    info = pm.plugin_infos["loose_pkg.hooks"]
    assert (info.status, info.origin, info.distribution, info.version) == ("active", "module", "miles-loose", "2.0")
    assert pm.provenance("reward_models", "fake_exact").plugin == "loose_pkg.hooks"


def test_dash_p_no_blocks_before_import(miles_fake_distribution):
    """The plugin raises at import: blocked means no import, so no warning and no module."""
    miles_fake_distribution("miles-fake-bomb", "1.0", {"fake_bomb": "fake_bomb_plugin"},
                            {"fake_bomb_plugin": RAISES_AT_IMPORT})
    for block in ("fake_bomb", "miles-fake-bomb", "miles_fake_bomb", "fake_bomb_plugin"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pm = build([f"no:{block}"])
        assert _status(pm, "fake_bomb") == "blocked", block
        assert "fake_bomb_plugin" not in sys.modules


def test_blocking_wins_over_requesting(good_and_other):
    pm = build(["fake_good", "no:fake_good"], disable_autoload=True)
    assert _status(pm, "fake_good") == "blocked"


def test_blocking_a_requested_module_path_imports_nothing(miles_fake_distribution):
    miles_fake_distribution("miles-loose-bomb", "1.0", {}, {"loose_bomb": RAISES_AT_IMPORT})
    pm = build(["loose_bomb", "no:loose_bomb"], disable_autoload=True)
    assert "loose_bomb" not in pm.plugin_infos and "loose_bomb" not in sys.modules


def test_dash_p_no_that_matches_nothing_warns(good_and_other):
    with pytest.warns(MilesPluginWarning) as record:
        build(["no:fake_goood"])
    message = str(record[0].message)
    assert message.startswith(
        "-p no:fake_goood matches no installed plugin, distribution or requested module; nothing was blocked. "
        "Did you mean 'fake_good'? Installed plugins: ")
    assert "fake_good (miles-fake-good)" in message


def test_miles_plugins_lists_exactly_what_loads(good_and_other):
    pm = build(env={"MILES_PLUGINS": " fake_other , "})
    assert pm.selection == PluginSelection(autoload=False, env_requested=("fake_other",))
    assert _status(pm, "fake_other") == "active"
    assert _status(pm, "fake_good") == "not loaded"


def test_miles_plugins_empty_loads_only_the_core(good_and_other):
    pm = build(env={"MILES_PLUGINS": ""})
    assert pm.selection.autoload is False and pm.selection.env_requested == ()
    loaded = {name for name, info in pm.plugin_infos.items() if info.status == "active"}
    assert loaded == {name for name, info in pm.plugin_infos.items() if info.distribution == "miles-core"}


def test_miles_plugins_and_dash_p_add_up(good_and_other):
    pm = build(["fake_good"], env={"MILES_PLUGINS": "fake_other"})
    assert _status(pm, "fake_good") == _status(pm, "fake_other") == "active"


def test_selection_round_trips_through_a_dict():
    selection = PluginSelection.from_options(
        ["a", "no:b", "a"], disable_autoload=False,
        environ={"MILES_PLUGINS": "c,d", "MILES_STRICT_PLUGINS": "1"})
    assert selection == PluginSelection(requested=("a",), blocked=("b",), autoload=False, strict=True,
                                        env_requested=("c", "d"))
    assert selection.to_dict() == {"requested": ["a"], "blocked": ["b"], "autoload": False, "strict": True,
                                   "env_requested": ["c", "d"]}
    assert PluginSelection.from_dict(selection.to_dict()) == selection
    assert selection.describe() == "autoload off; -p: a; MILES_PLUGINS: c, d; blocked: b; strict"


@pytest.mark.parametrize(("option", "message"), [
    ("no:", "-p no: needs a plugin name, as in '-p no:miles-rm-math'"),
    ("  ", "-p needs a plugin name: an entry-point name, a distribution or a module path"),
])
def test_malformed_dash_p(option, message):
    with pytest.raises(PluginError) as error:
        PluginSelection.from_options([option], environ={})
    assert str(error.value) == message


def test_dash_p_package_of_the_entry_point_module(miles_fake_distribution):
    miles_fake_distribution("miles-pkg-plugin", "1.0", {"pkg_plugin": "pkg_plugin_mod.hooks"},
                            {"pkg_plugin_mod.hooks": GOOD_REWARD})
    pm = build(["pkg_plugin_mod"], disable_autoload=True)
    assert _status(pm, "pkg_plugin") == "active" and "pkg_plugin_mod" not in pm.plugin_infos


def test_blocking_a_distribution_blocks_its_module_named_with_dash_p(miles_fake_distribution):
    miles_fake_distribution("miles-loose-dist", "1.0", {}, {"loose_dist_mod": RAISES_AT_IMPORT})
    pm = build(["loose_dist_mod", "no:miles-loose-dist"], disable_autoload=True)
    assert "loose_dist_mod" not in pm.plugin_infos and "loose_dist_mod" not in sys.modules


def test_a_manager_loads_once():
    pm = build(env={"MILES_PLUGINS": ""})
    with pytest.raises(PluginError, match="^this plugin manager has already loaded its plugins; build a new one$"):
        pm.load_selected()
