"""Shared pieces of the plugin-system tests: plugin sources for fake distributions and a manager builder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from miles_core.plugins.manager import MilesPluginManager, build_plugin_manager
from miles_core.plugins.selection import PluginSelection

GOOD_REWARD = '''
    from miles_core import hookimpl, RewardModelSpec

    async def exact(args, sample, **kwargs):
        return float(sample.response.strip() == str(sample.label).strip())

    @hookimpl
    def miles_reward_models():
        yield RewardModelSpec(name="fake_exact", description="1 if the response equals the label", fn=exact)
'''

OTHER_FILTER = '''
    from miles_core import hookimpl, FilterSpec

    def keep_all(args, samples, **kwargs):
        return True

    @hookimpl
    def miles_filters():
        yield FilterSpec(name="fake_keep_all", description="Keep every group", fn=keep_all)
'''

RAISES_AT_IMPORT = '''
    raise RuntimeError("boom at import")
'''


def reward_provider(name: str) -> str:
    """A plugin source giving a reward called ``name`` (for duplicate-name tests)."""
    return f'''
    from miles_core import hookimpl, RewardModelSpec

    @hookimpl
    def miles_reward_models():
        yield RewardModelSpec(name={name!r}, description="Same name as another plugin", fn=lambda args, sample: 0.0)
'''


def build(options: Iterable[str] = (), *, env: Mapping[str, str] | None = None,
          disable_autoload: bool = False) -> MilesPluginManager:
    """A manager for these ``-p`` options and this environment (never the test process's own)."""
    return build_plugin_manager(PluginSelection.from_options(options, disable_autoload, environ=env or {}))
