"""Loading the object a Miles ``--*-path`` flag names (``--custom-rm-path pkg.mod:fn``).

The plugin layer owns the one implementation (``miles_core.plugins.path_flags.load_path_flag``, which
also adapts legacy call forms); until it is importable, the plain importer of
``miles_core.plugins.loading`` is used, so the rollout side works either way.
"""

from __future__ import annotations

from typing import Any

from miles_core.plugins.loading import load_object

__all__ = ["load_custom_path", "flag_name"]


def flag_name(dest: str) -> str:
    """The command-line spelling of an ``args`` attribute: ``custom_rm_path`` → ``--custom-rm-path``."""
    return "--" + dest.replace("_", "-")


def load_custom_path(args: Any, dest: str) -> Any | None:
    """The object named by ``args.<dest>``, or ``None`` when the flag is unset."""
    path = getattr(args, dest, None)
    if not path:
        return None
    try:
        from miles_core.plugins.path_flags import load_path_flag
    except ImportError:
        return load_object(path, flag=flag_name(dest))
    return load_path_flag(args, dest)
