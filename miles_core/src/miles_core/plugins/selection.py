"""Which plugins a run loads: ``-p``/``--plugin``, ``--disable-plugin-autoload`` and ``MILES_*`` variables.

The driver reads its options and environment once into a :class:`PluginSelection` and stores
``selection.to_dict()`` on the parsed args. Every other process (Ray workers) rebuilds the manager from
that dict alone, so a worker whose environment differs still loads exactly the driver's plugins.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from miles_core.plugins.errors import PluginError

__all__ = ["PluginSelection", "ENV_PLUGINS", "ENV_DISABLE_AUTOLOAD", "ENV_STRICT"]

ENV_PLUGINS = "MILES_PLUGINS"
ENV_DISABLE_AUTOLOAD = "MILES_DISABLE_PLUGIN_AUTOLOAD"
ENV_STRICT = "MILES_STRICT_PLUGINS"


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class PluginSelection:
    """Everything needed to rebuild the same plugin manager in another process.

    - ``requested``: names given with ``-p NAME`` (entry-point name, distribution name or module path).
    - ``blocked``: names given with ``-p no:NAME``; blocking wins over requesting.
    - ``autoload``: load every installed plugin (off with ``--disable-plugin-autoload``,
      ``MILES_DISABLE_PLUGIN_AUTOLOAD=1`` or whenever ``MILES_PLUGINS`` is set).
    - ``strict``: a plugin that fails to load is an error, not a warning (``MILES_STRICT_PLUGINS=1``).
    - ``env_requested``: the names listed in ``MILES_PLUGINS`` (loaded like ``-p`` names).
    """

    requested: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    autoload: bool = True
    strict: bool = False
    env_requested: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls,
        plugin_options: Iterable[str] = (),
        disable_autoload: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> PluginSelection:
        """Combine ``-p`` options, ``--disable-plugin-autoload`` and the ``MILES_*`` environment variables."""
        env = os.environ if environ is None else environ
        requested: list[str] = []
        blocked: list[str] = []
        for option in plugin_options or ():
            option = option.strip()
            if option.startswith("no:"):
                name = option[3:].strip()
                if not name:
                    raise PluginError("-p no: needs a plugin name, as in '-p no:miles-rm-math'")
                blocked.append(name)
            elif option:
                requested.append(option)
            else:
                raise PluginError("-p needs a plugin name: an entry-point name, a distribution or a module path")
        autoload = not (disable_autoload or _truthy(env.get(ENV_DISABLE_AUTOLOAD)))
        env_requested: list[str] = []
        if ENV_PLUGINS in env:
            autoload = False  # MILES_PLUGINS lists exactly what to load besides the core
            env_requested = [name.strip() for name in env[ENV_PLUGINS].split(",") if name.strip()]
        return cls(
            requested=tuple(dict.fromkeys(requested)),
            blocked=tuple(dict.fromkeys(blocked)),
            autoload=autoload,
            strict=_truthy(env.get(ENV_STRICT)),
            env_requested=tuple(dict.fromkeys(env_requested)),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (stored as ``args.plugin_selection``)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginSelection:
        return cls(
            requested=tuple(data.get("requested", ())),
            blocked=tuple(data.get("blocked", ())),
            autoload=bool(data.get("autoload", True)),
            strict=bool(data.get("strict", False)),
            env_requested=tuple(data.get("env_requested", ())),
        )

    def all_requested(self) -> tuple[str, ...]:
        """``-p`` names then ``MILES_PLUGINS`` names, without repeats."""
        return tuple(dict.fromkeys(self.requested + self.env_requested))

    def origin_of(self, name: str) -> str:
        """How the user named ``name``, for error messages: ``-p NAME`` or ``MILES_PLUGINS``."""
        return f"-p {name}" if name in self.requested else f"{ENV_PLUGINS} entry {name!r}"

    def describe(self) -> str:
        """One line for listings: ``autoload on; -p: a; blocked: b; strict``."""
        parts = [f"autoload {'on' if self.autoload else 'off'}"]
        if self.requested:
            parts.append("-p: " + ", ".join(self.requested))
        if self.env_requested:
            parts.append(f"{ENV_PLUGINS}: " + ", ".join(self.env_requested))
        if self.blocked:
            parts.append("blocked: " + ", ".join(self.blocked))
        if self.strict:
            parts.append("strict")
        return "; ".join(parts)
