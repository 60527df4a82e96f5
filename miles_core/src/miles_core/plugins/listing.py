"""What ``miles plugins`` reports, as plain data (the CLI only formats it).

Every plugin the manager saw appears, whatever happened to it: ``active``, ``blocked`` (``-p no:``),
``failed`` (with the error) or ``not loaded`` (autoload off and not named with ``-p``). Ad-hoc specs
from ``--*-path`` flags appear under their flag. No anchor project lists plugins that failed to load;
that is the case a user most needs the listing for.
"""

from __future__ import annotations

from typing import Any

from miles_core.plugins.info import ORIGINS
from miles_core.plugins.registry import KINDS, describe_provenance

__all__ = ["plugin_rows", "spec_rows", "listing"]


def plugin_rows(pm: Any) -> list[dict[str, Any]]:
    """One dict per plugin: name, distribution, version, status, error, origin, target, provides, hooks.

    Installed plugins first (in load order), then ``-p`` modules, objects registered by code, and flags.
    """
    infos = list(pm.plugin_infos.values())
    infos.sort(key=lambda info: ORIGINS.index(info.origin) if info.origin in ORIGINS else len(ORIGINS))
    return [info.to_dict() for info in infos]


def spec_rows(pm: Any) -> list[dict[str, Any]]:
    """One dict per spec: kind, name, description, plugin, distribution, version, source.

    ``source`` is the provenance as a sentence (``miles-rm-math 0.1.0 (plugin 'rm_math')`` or the flag).
    """
    rows = []
    for kind, spec, provenance in pm.iter_specs():
        rows.append({
            "kind": kind, "name": spec.name, "description": spec.description,
            "plugin": provenance.plugin, "distribution": provenance.distribution, "version": provenance.version,
            "source": describe_provenance(provenance),
        })
    kind_order = list(KINDS)
    rows.sort(key=lambda row: (kind_order.index(row["kind"]), row["name"]))
    return rows


def listing(pm: Any, *, include_specs: bool = False) -> dict[str, Any]:
    """The whole report: the selection, the plugins, conflicts and (with ``include_specs``) every spec."""
    report: dict[str, Any] = {
        "selection": pm.selection.to_dict(),
        "plugins": plugin_rows(pm),
        "conflicts": pm.conflicts(),
    }
    if include_specs:
        report["specs"] = spec_rows(pm)
    return report
