"""What the user sees when a plugin is broken, misspelt, conflicting or missing: the exact messages."""

from __future__ import annotations

import sys

import pytest
from miles_core.plugins import registry as registry_module
from miles_core.plugins.errors import DuplicateNameError, MilesPluginWarning, PluginError, UnknownNameError
from miles_core.plugins.manager import MilesPluginManager
from miles_core.plugins.selection import PluginSelection
from plugin_test_support import RAISES_AT_IMPORT, build, reward_provider

BROKEN_WARNING = (
    "plugin 'fake_bomb' from miles-fake-bomb 1.0 failed to load and is skipped: RuntimeError: boom at import\n"
    "Disable it with -p no:fake_bomb, or set MILES_STRICT_PLUGINS=1 to make this an error."
)


@pytest.fixture
def bomb(miles_fake_distribution):
    miles_fake_distribution("miles-fake-bomb", "1.0", {"fake_bomb": "fake_bomb_plugin"},
                            {"fake_bomb_plugin": RAISES_AT_IMPORT})


def test_broken_plugin_warns_and_is_skipped(bomb):
    with pytest.warns(MilesPluginWarning) as record:
        pm = build()
    assert [str(w.message) for w in record if "fake_bomb" in str(w.message)] == [BROKEN_WARNING]
    info = pm.plugin_infos["fake_bomb"]
    assert (info.status, info.error, info.provides) == ("failed", "RuntimeError: boom at import", {})
    assert pm.get_plugin("fake_bomb") is None
    pm.registries()  # the rest of the run still works


def test_strict_mode_turns_a_broken_plugin_into_an_error(bomb):
    with pytest.raises(PluginError) as error:
        build(env={"MILES_STRICT_PLUGINS": "1"})
    assert str(error.value) == (
        "plugin 'fake_bomb' from miles-fake-bomb 1.0 failed to load: RuntimeError: boom at import\n"
        "This is an error because MILES_STRICT_PLUGINS is set. Fix or uninstall miles-fake-bomb, "
        "or leave it out with -p no:fake_bomb."
    )


@pytest.mark.parametrize(("options", "env", "origin"), [
    (["fake_bomb"], {}, "-p fake_bomb"),
    ([], {"MILES_PLUGINS": "fake_bomb"}, "MILES_PLUGINS entry 'fake_bomb'"),
])
def test_a_broken_plugin_named_explicitly_is_an_error(bomb, options, env, origin):
    with pytest.raises(PluginError) as error:
        build(options, env=env, disable_autoload=True)
    assert str(error.value) == (
        "plugin 'fake_bomb' from miles-fake-bomb 1.0 failed to load: RuntimeError: boom at import\n"
        f"This is an error because it was named with {origin}. Fix or uninstall miles-fake-bomb, "
        "or leave it out with -p no:fake_bomb."
    )


def test_a_module_with_a_missing_dependency_is_broken_not_unknown(miles_fake_distribution):
    miles_fake_distribution("miles-needs-dep", "1.0", {}, {"needs_dep": "import not_installed_dependency_xyz\n"})
    with pytest.raises(PluginError) as error:
        build(["needs_dep"], disable_autoload=True)
    assert not isinstance(error.value, UnknownNameError)
    assert str(error.value).startswith(
        "plugin 'needs_dep' from miles-needs-dep 1.0 failed to load: "
        "ModuleNotFoundError: No module named 'not_installed_dependency_xyz'\n")


def test_duplicate_names_error_names_every_provider(miles_fake_distribution):
    for dist, ep in (("miles-dup-a", "dup_a"), ("miles-dup-b", "dup_b"), ("miles-dup-c", "dup_c")):
        miles_fake_distribution(dist, "1.0", {ep: f"{ep}_plugin"}, {f"{ep}_plugin": reward_provider("shared")})
    pm = build()
    with pytest.raises(DuplicateNameError) as error:
        pm.registry("reward_models")
    assert str(error.value) == (
        "conflicting plugins for miles_reward_models: more than one plugin gives the same reward model name.\n"
        "  - 'shared' provided by:\n"
        "    - miles-dup-a 1.0 (plugin 'dup_a')\n"
        "    - miles-dup-b 1.0 (plugin 'dup_b')\n"
        "    - miles-dup-c 1.0 (plugin 'dup_c')\n"
        "Uninstall all but one of them, or block the ones you do not want with "
        "-p no:dup_a / -p no:dup_b / -p no:dup_c."
    )
    assert pm.conflicts() == str(error.value)
    assert build(["no:dup_a", "no:dup_b"]).get("reward_models", "shared") is not None


def test_unknown_dash_p_name_lists_installed_plugins_and_suggests(good_and_other):
    with pytest.raises(UnknownNameError) as error:
        build(["fake_goood"], disable_autoload=True)
    message = str(error.value)
    assert message.startswith(
        "-p fake_goood: no installed plugin, distribution or importable module has this name. "
        "Did you mean 'fake_good'? Installed plugins: ")
    assert "fake_good (miles-fake-good), " in message and message.endswith(".")


def test_unknown_miles_plugins_entry_names_the_variable(good_and_other):
    with pytest.raises(UnknownNameError) as error:
        build(env={"MILES_PLUGINS": "nothing_like_this_xyz"})
    assert str(error.value).startswith(
        "MILES_PLUGINS entry 'nothing_like_this_xyz': no installed plugin, distribution or importable module "
        "has this name. Installed plugins: ")


def test_unknown_first_party_name_says_what_to_pip_install(monkeypatch):
    # Every first-party package is installed here, so pretend one more exists that is not.
    monkeypatch.setitem(registry_module.FIRST_PARTY_DISTRIBUTIONS, "miles-rm-future", ("rm_future", "miles_rm_future"))
    for name in ("rm_future", "miles-rm-future", "miles_rm_future"):
        with pytest.raises(UnknownNameError) as error:
            build([name], disable_autoload=True)
        assert str(error.value).startswith(
            f"-p {name}: no installed plugin, distribution or importable module has this name. "
            f"{name!r} is provided by miles-rm-future: pip install miles-rm-future. Installed plugins: ")


def test_unknown_selected_spec_name_says_what_to_pip_install():
    pm = build(env={"MILES_PLUGINS": ""})  # only the core: no math reward
    with pytest.raises(UnknownNameError) as error:
        pm.get("reward_models", "math", flag="--rm-type")
    available = ", ".join(pm.registry("reward_models").names()) or "none"
    assert str(error.value) == (
        f"unknown --rm-type 'math'. Available: {available}. 'math' is provided by miles-rm-math: "
        "pip install miles-rm-math (if it is installed, check that it is not blocked with -p no: "
        "or left out by MILES_PLUGINS).")


def test_unknown_selected_spec_name_suggests_a_close_one(good_and_other):
    pm = build()
    with pytest.raises(UnknownNameError) as error:
        pm.get("reward_models", "fake_exac")
    assert "Did you mean 'fake_exact'?" in str(error.value)
    assert str(error.value).startswith("unknown reward model 'fake_exac'. Available: ")


MISSPELT = '''
    from miles_core import hookimpl, RewardModelSpec

    @hookimpl
    def miles_reward_models():
        yield RewardModelSpec(name="never_registered", description="x", fn=lambda args, sample: 1.0)

    @hookimpl
    def miles_after_rollouts(args, rollout_id, samples):
        pass
'''


def test_misspelt_hook_fails_that_plugin(miles_fake_distribution):
    miles_fake_distribution("miles-typo", "3.1", {"typo": "typo_plugin"}, {"typo_plugin": MISSPELT})
    with pytest.warns(MilesPluginWarning) as record:
        pm = build()
    assert [str(w.message) for w in record if "typo" in str(w.message)] == [
        "plugin 'typo' from miles-typo 3.1 failed to load and is skipped: miles_after_rollouts is not a miles hook "
        "(did you mean miles_after_rollout?)\n"
        "Disable it with -p no:typo, or set MILES_STRICT_PLUGINS=1 to make this an error."
    ]
    assert "never_registered" not in pm.registry("reward_models")
    assert pm.get_plugin("typo") is None
    assert "typo" not in {impl.plugin_name for impl in pm.hook.miles_reward_models.get_hookimpls()}


def test_undecorated_miles_function_is_a_hook_too(miles_plugin_manager, register_plugin):
    """As in pytest, the prefix is reserved: a miles_* function is a hook, decorated or not."""
    module = type(sys)("undecorated_plugin")
    exec("from miles_core import RewardModelSpec\n"
         "def miles_reward_models():\n"
         "    return [RewardModelSpec(name='plain', description='no decorator', fn=lambda a, s: 1.0)]\n"
         "def miles_reward_modles():\n"
         "    return []\n", module.__dict__)
    with pytest.raises(PluginError) as error:
        register_plugin(module)
    assert str(error.value) == ("plugin 'undecorated_plugin' cannot be registered: miles_reward_modles is not a "
                                "miles hook (did you mean miles_reward_models?)")
    del module.miles_reward_modles
    register_plugin(module)
    assert miles_plugin_manager.get("reward_models", "plain").description == "no decorator"


WRONG_TYPE = '''
    from miles_core import hookimpl, FilterSpec

    @hookimpl
    def miles_reward_models():
        yield FilterSpec(name="not_a_reward", description="A filter in the reward registry", fn=lambda a, s: True)
'''


def test_wrong_spec_type_fails_that_plugin(miles_fake_distribution):
    miles_fake_distribution("miles-wrong", "1.0", {"wrong": "wrong_plugin"}, {"wrong_plugin": WRONG_TYPE})
    with pytest.warns(MilesPluginWarning) as record:
        pm = build()
    assert [str(w.message) for w in record if "wrong" in str(w.message)] == [
        "plugin 'wrong' from miles-wrong 1.0 failed to load and is skipped: miles_reward_models() yielded "
        "FilterSpec 'not_a_reward', expected RewardModelSpec\n"
        "Disable it with -p no:wrong, or set MILES_STRICT_PLUGINS=1 to make this an error."
    ]
    assert "not_a_reward" not in pm.registry("filters")


def test_invalid_spec_and_raising_hook_and_single_spec_fail_the_plugin(miles_plugin_manager):
    from miles_core import RewardModelSpec

    class BadName:
        def miles_reward_models(self):
            yield RewardModelSpec(name="has space", description="x", fn=lambda a, s: 0.0)

    class ReturnsOne:
        def miles_reward_models(self):
            return RewardModelSpec(name="one", description="x", fn=lambda a, s: 0.0)

    class BadArgument:
        def miles_after_rollout(self, args, rollout_idx):
            pass

    expected = {
        BadName: "plugin 'BadName' cannot be registered: miles_reward_models() raised ValueError: "
                 "RewardModelSpec.name must be a non-empty string of letters, digits, '_', '-' or '.'; got 'has space'",
        ReturnsOne: "plugin 'ReturnsOne' cannot be registered: miles_reward_models() must yield RewardModelSpec "
                    "specs (or return a list of them), got RewardModelSpec",
    }
    for plugin_class, message in expected.items():
        with pytest.raises(PluginError) as error:
            miles_plugin_manager.register_plugin(plugin_class)
        assert str(error.value) == message
        assert miles_plugin_manager.get_plugin(plugin_class.__name__) is None
    with pytest.raises(PluginError) as error:
        miles_plugin_manager.register_plugin(BadArgument)
    assert "Argument(s) {'rollout_idx'} are declared in the hookimpl but can not be found in the hookspec" in str(
        error.value)


def test_register_plugin_rejects_a_second_plugin_of_the_same_name():
    pm = MilesPluginManager(PluginSelection(autoload=False))

    class One:
        pass

    pm.register_plugin(One(), name="same")
    with pytest.raises(PluginError) as error:
        pm.register_plugin(One(), name="same")
    assert str(error.value) == ("plugin 'same' cannot be registered: a plugin named 'same' is already registered; "
                                "pick another name")


def test_two_distributions_with_one_plugin_name(miles_fake_distribution):
    miles_fake_distribution("miles-first", "1.0", {"same_name": "first_mod"}, {"first_mod": ""})
    miles_fake_distribution("miles-second", "2.0", {"same_name": "second_mod:Plugin"},
                            {"second_mod": "class Plugin:\n    pass\n"})
    with pytest.raises(DuplicateNameError) as error:
        build()
    assert str(error.value) == (
        "two installed distributions declare a plugin named 'same_name': miles-first 1.0 (same_name = first_mod) "
        "and miles-second 2.0 (same_name = second_mod:Plugin). Uninstall one, or block one by its distribution "
        "name: -p no:miles-first or -p no:miles-second.")
    pm = build(["no:miles-first"])
    assert pm.plugin_infos["same_name"].distribution == "miles-second"
    assert pm.plugin_infos["same_name"].status == "active"  # a class entry point is instantiated
