"""``miles plugins [--json] [--all]``: which plugins are installed, loaded, blocked or broken, and what each gives.

This is the documented way to check the selection switches: ``MILES_PLUGINS=rm_math miles plugins``,
``miles -p no:rm_math plugins``. It imports only the plugin modules themselves (which keep their heavy
imports inside functions), never torch, Ray or transformers.

Exit status: 0, or 1 when two plugins give the same name (a run would stop on that too) or the
selection itself is wrong (an unknown or broken ``-p`` plugin).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, TextIO

__all__ = ["add_parser", "run", "format_table", "format_specs"]

_DESCRIPTION = """\
List every Miles plugin: its distribution and version, its status (active, blocked by -p no:, failed to
load with the error, or not loaded because autoload is off) and what it provides (kind: names).
Ad-hoc specs from --*-path flags are listed under their flag."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``plugins`` subcommand to the ``miles`` CLI (``func=run``)."""
    parser = subparsers.add_parser(
        "plugins", help="List plugins: status and what each provides", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="Print machine-readable JSON instead of a table.")
    parser.add_argument("--all", action="store_true",
                        help="Also list every spec (reward models, filters, ...) with its description and source.")
    parser.set_defaults(func=run)
    return parser


def _manager(args: argparse.Namespace) -> Any:
    """The CLI's manager if it handed one over, else one rebuilt from the stored selection."""
    pm = getattr(args, "plugin_manager", None)
    if pm is not None:
        return pm
    from miles_core.plugins.errors import MilesPluginWarning
    from miles_core.plugins.manager import build_plugin_manager

    with warnings.catch_warnings():
        # The table shows every failure with its error; the warnings would say it twice.
        warnings.simplefilter("ignore", MilesPluginWarning)
        return build_plugin_manager(getattr(args, "plugin_selection", None))


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the listing for the selection stored on ``args``; returns the exit status."""
    from miles_core.plugins.errors import PluginError
    from miles_core.plugins.listing import listing
    from miles_core.plugins.path_flags import register_path_specs

    out = out or sys.stdout
    try:
        pm = _manager(args)
        register_path_specs(pm, args)
    except PluginError as exc:
        print(f"miles plugins: error: {exc}", file=sys.stderr)
        return 1
    report = listing(pm, include_specs=bool(getattr(args, "all", False)))
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, sort_keys=False), file=out)
    else:
        print(format_table(report["plugins"], selection=pm.selection.describe()), file=out)
        if "specs" in report:
            print(file=out)
            print(format_specs(report["specs"]), file=out)
        if report["conflicts"]:
            print(file=out)
            print(report["conflicts"], file=out)
    return 1 if report["conflicts"] else 0


def _provides_text(row: dict[str, Any]) -> str:
    if row["status"] == "failed":
        return (row["error"] or "").splitlines()[0] if row["error"] else ""
    if row["status"] == "blocked":
        return "(blocked with -p no:; not imported)"
    if row["status"] == "not loaded":
        return "(autoload off; load with -p " + row["name"] + ")"
    parts = [f"{kind}: {', '.join(names)}" for kind, names in row["provides"].items()]
    other_hooks = [h for h in row["hooks"] if h.removeprefix("miles_") not in row["provides"]]
    if other_hooks:
        parts.append("hooks: " + ", ".join(other_hooks))
    if not parts and row["origin"] == "flag":
        parts.append(row["target"] or "")
    return "; ".join(parts) or "-"


def format_table(rows: list[dict[str, Any]], *, selection: str | None = None) -> str:
    """The plugins as an aligned text table (name, distribution, version, status, provides)."""
    header = ("NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES")
    table = [header]
    for row in rows:
        distribution = row["distribution"] or ("(flag)" if row["origin"] == "flag" else f"({row['origin']})")
        table.append((row["name"], distribution, row["version"] or "-", row["status"], _provides_text(row)))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = []
    if selection:
        lines.append(f"Miles plugins ({selection})")
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)] + [line[-1]]
        lines.append("  ".join(cells).rstrip())
    if not rows:
        lines.append("(no plugins found: is miles-core installed in this environment?)")
    return "\n".join(lines)


def format_specs(rows: list[dict[str, Any]]) -> str:
    """Every spec grouped by kind: name, description and where it comes from."""
    lines: list[str] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    for kind, specs in by_kind.items():
        lines.append(f"{kind}:")
        width = max(len(spec["name"]) for spec in specs)
        for spec in specs:
            lines.append(f"  {spec['name'].ljust(width)}  {spec['description']}  [{spec['source']}]")
    return "\n".join(lines) or "(no specs)"
