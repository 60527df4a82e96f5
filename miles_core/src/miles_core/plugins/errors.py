"""The exceptions and the warning category of the plugin system.

Every error here is one the *user* can fix, so its message says what to do (install, uninstall, block
with ``-p no:NAME``, fix a flag). The CLI prints these without a traceback.
"""

from __future__ import annotations

__all__ = ["PluginError", "UnknownNameError", "DuplicateNameError", "PathFlagError", "MilesPluginWarning"]


class PluginError(Exception):
    """A plugin problem the user must fix; the message says what to do."""


class UnknownNameError(PluginError, ValueError):
    """A selected name (``--rm-type x``, ``-p x``) that no installed plugin provides."""


class DuplicateNameError(PluginError):
    """Two or more plugins give a spec of the same kind the same name."""


class PathFlagError(PluginError, ValueError):
    """A ``--*-path`` flag whose value cannot be imported or has the wrong shape; names flag and path."""


class MilesPluginWarning(UserWarning):
    """A plugin was skipped (it failed to load) or a selection option matched nothing."""
