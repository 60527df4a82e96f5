"""``PluginInfo``: one plugin as the manager records it and ``miles plugins`` shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from miles_core.plugins.types import Provenance

__all__ = ["PluginInfo", "STATUSES", "ORIGINS"]

STATUSES = ("active", "blocked", "failed", "not loaded")
ORIGINS = ("entry-point", "module", "object", "flag")


@dataclass
class PluginInfo:
    """One plugin as ``miles plugins`` shows it.

    ``origin`` says how it got here: ``entry-point`` (installed), ``module`` (``-p pkg.mod``),
    ``flag`` (a ``--*-path`` flag) or ``object`` (registered by code, e.g. a test).
    ``target`` is what was loaded: the entry point's ``module:attr``, the module, or the flag's path.
    """

    name: str
    distribution: str | None
    version: str | None
    status: str  # "active" | "blocked" | "failed" | "not loaded"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)
    origin: str = "entry-point"
    target: str | None = None
    hooks: list[str] = field(default_factory=list)

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.name, self.distribution, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "distribution": self.distribution, "version": self.version,
            "status": self.status, "error": self.error, "origin": self.origin, "target": self.target,
            "provides": {kind: list(names) for kind, names in self.provides.items()},
            "hooks": list(self.hooks),
        }
