"""Import helpers: entry points of group ``miles`` and dotted paths named by ``--*-path`` flags."""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENTRY_POINT_GROUP = "miles"


@dataclass(frozen=True)
class PluginEntryPoint:
    """One entry point of group ``miles``, with the distribution that declares it."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    entry_point: metadata.EntryPoint

    def load(self) -> Any:
        return self.entry_point.load()


def normalize_distribution_name(name: str) -> str:
    """PEP 503 normalisation, so ``miles_rm_math`` and ``Miles-RM-Math`` name the same distribution."""
    return name.replace("_", "-").replace(".", "-").lower()


def iter_plugin_entry_points() -> list[PluginEntryPoint]:
    """Every installed entry point of group ``miles``, deduplicated, ``miles-core``'s first.

    Reading metadata does not import anything, so blocking a plugin (``-p no:NAME``) happens before
    its code runs.
    """
    seen: set[tuple[str | None, str]] = set()
    found: list[PluginEntryPoint] = []
    for dist in metadata.distributions():
        # entry_points.txt first: parsing every METADATA file (hundreds in an ML environment) costs
        # far more than the rest of start-up, and only the few plugin distributions need it.
        plugin_eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if not plugin_eps:
            continue
        dist_name = dist.metadata["Name"] if dist.metadata else None
        for ep in plugin_eps:
            key = (normalize_distribution_name(dist_name) if dist_name else None, ep.name)
            if key in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(key)
            found.append(PluginEntryPoint(ep.name, ep.value, dist_name, dist.version, ep))
    # The core's built-ins first, then the others by (distribution, name): a stable, documented order.
    found.sort(key=lambda p: (normalize_distribution_name(p.distribution or "") != "miles-core",
                              p.distribution or "", p.name))
    return found


def distribution_of_module(module_name: str, packages: Mapping[str, list[str]] | None = None
                           ) -> tuple[str | None, str | None]:
    """``(distribution, version)`` that installs the top-level package of ``module_name``, if any.

    Used to show where a plugin loaded by module path (``-p my_pkg.plugin``) comes from, and to let
    ``-p no:DIST`` block it. ``packages`` is ``importlib.metadata.packages_distributions()`` when the
    caller already has it (it reads every installed RECORD, so callers compute it once).
    """
    top_level = module_name.partition(".")[0]
    try:
        names = (packages if packages is not None else metadata.packages_distributions()).get(top_level) or []
    except Exception:  # a broken distribution on sys.path must not break a listing
        return None, None
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None, None


class ObjectPathError(ImportError):
    """A ``--*-path`` value (or ``-p`` module) that cannot be imported, with what to do about it."""


def _import_error(where: str, module_name: str, exc: BaseException) -> ObjectPathError:
    return ObjectPathError(
        f"{where}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}). "
        "Is the package installed in this environment (and on every Ray worker)?"
    )


def _nested_attribute(module_name: str, attr_path: str, exc: ModuleNotFoundError) -> Any:
    """``pkg.mod.Class.method``: the longest importable prefix is the module, if the rest resolves on it."""
    missing, candidate, rest = exc, module_name, attr_path
    while missing.name == candidate and "." in candidate:
        candidate, _, head = candidate.rpartition(".")
        rest = f"{head}.{rest}"
        try:
            obj: Any = importlib.import_module(candidate)
        except ModuleNotFoundError as inner:
            missing = inner
            continue
        except Exception:
            break
        try:
            for part in rest.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            break
        return obj
    raise exc


def load_object(path: str, *, flag: str | None = None) -> Any:
    """Import ``pkg.mod:attr`` or ``pkg.mod.attr`` (Miles's ``load_function`` spelling) and return it.

    Nested attributes are allowed (``pkg.mod:Class.method``; in the dotted spelling, ``pkg.mod.Class.method``
    also works: the longest importable prefix is the module). The error names the flag.
    """
    where = f"{flag} {path!r}" if flag else repr(path)
    if not path or not isinstance(path, str):
        raise ObjectPathError(f"{where}: expected 'package.module:function' or 'package.module.function'")
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise ObjectPathError(f"{where}: expected 'package.module:function' or 'package.module.function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if ":" in path:
            raise _import_error(where, module_name, exc) from exc
        try:
            return _nested_attribute(module_name, attr_path, exc)
        except ModuleNotFoundError:
            raise _import_error(where, module_name, exc) from exc
    except Exception as exc:
        raise _import_error(where, module_name, exc) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ObjectPathError(f"{where}: module {module_name!r} has no attribute {attr_path!r}") from None
    return obj
