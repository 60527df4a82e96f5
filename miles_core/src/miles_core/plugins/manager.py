"""The plugin manager: which plugins load, and the registries of specs they give.

Selection rules (the contract in DESIGN.md):

- Every entry point of group ``miles`` is a plugin. Those of ``miles-core`` are the built-ins and always
  load (unless blocked with ``-p no:NAME``); the others load automatically unless autoload is off
  (``--disable-plugin-autoload``, ``MILES_DISABLE_PLUGIN_AUTOLOAD=1``, or ``MILES_PLUGINS`` set).
- ``-p NAME`` loads a plugin by entry-point name, distribution name or importable module path, even when
  autoload is off; a missing or broken plugin named this way is an error.
- ``-p no:NAME`` blocks an entry point, a whole distribution, or a module, *before* it is imported.
- ``MILES_PLUGINS=a,b`` means "autoload off, and load exactly a and b" (empty: none besides the core).
- A broken plugin warns (distribution, version, error and the ``-p no:`` hint) and is skipped, unless
  ``MILES_STRICT_PLUGINS=1``.
- A ``miles_*`` attribute that matches no hookspec (a misspelt hook) makes that plugin broken.
- Two plugins giving the same name in one registry is an error naming every provider.

Like pytest, every ``miles_*`` function of a plugin is a hook implementation, with or without
``@hookimpl`` (the decorator is needed only for options such as ``tryfirst``): the prefix is reserved.

The whole selection is a :class:`PluginSelection`, stored on the parsed args, so every Ray worker
rebuilds exactly the same manager from the args alone (no dependence on its environment).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import warnings
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import pluggy

from miles_core.plugins import hookspecs
from miles_core.plugins.errors import (
    DuplicateNameError,
    MilesPluginWarning,
    PathFlagError,
    PluginError,
    UnknownNameError,
)
from miles_core.plugins.info import PluginInfo
from miles_core.plugins.loading import (
    PluginEntryPoint,
    distribution_of_module,
    iter_plugin_entry_points,
    normalize_distribution_name,
)
from miles_core.plugins.registry import (
    FIRST_PARTY_DISTRIBUTIONS,
    KINDS,
    KNOWN_PROVIDERS,
    Registry,
    build_registries,
)
from miles_core.plugins.selection import PluginSelection
from miles_core.plugins.types import SPEC_TYPES, Provenance

__all__ = [
    "CORE_DISTRIBUTION",
    "KINDS",
    "KNOWN_PROVIDERS",
    "DuplicateNameError",
    "MilesPluginManager",
    "MilesPluginWarning",
    "PathFlagError",
    "PluginError",
    "PluginInfo",
    "PluginSelection",
    "Registry",
    "UnknownNameError",
    "build_plugin_manager",
    "plugin_manager_from_args",
]

CORE_DISTRIBUTION = "miles-core"

#: Every hook name the manager knows (for "did you mean" on a misspelt hook).
HOOK_NAMES: tuple[str, ...] = tuple(
    sorted(name for name, obj in vars(hookspecs).items() if name.startswith("miles_") and callable(obj))
)


def _error_text(exc: BaseException) -> str:
    """Our own errors already read as sentences; others keep their type name."""
    return str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"


class MilesPluginManager(pluggy.PluginManager):
    """A pluggy manager that only looks at ``miles_*`` attributes and keeps per-plugin bookkeeping.

    Build one with :func:`build_plugin_manager`; tests use ``miles_core.testing``'s fixtures.
    """

    def __init__(self, selection: PluginSelection | None = None) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.selection = selection or PluginSelection()
        self.plugin_infos: dict[str, PluginInfo] = {}
        self._plugin_specs: dict[str, list[tuple[str, Any, Provenance]]] = {}
        self._adhoc: dict[tuple[str, str], tuple[Any, Provenance]] = {}
        self._registries: dict[str, Registry] | None = None
        self._loaded = False
        self._packages: Mapping[str, list[str]] | None = None

    # pytest's parse_hookimpl_opts: only attributes with our prefix can be hooks, decorated or not.
    def parse_hookimpl_opts(self, plugin: Any, name: str):  # type: ignore[override]
        if not name.startswith("miles_"):
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None:
            try:  # static lookup: never run a property or __getattr__ while looking for hooks
                attr = inspect.getattr_static(plugin, name)
            except AttributeError:
                return None
            if inspect.isroutine(attr):
                opts = {}  # normalised to the defaults by pluggy
        return opts

    # ----------------------------------------------------------------------------------------- loading

    def load_selected(self) -> MilesPluginManager:
        """Load the built-ins, the autoloaded and the requested plugins, per :attr:`selection`.

        Entry points are read from metadata only, so blocked and not-selected plugins are never imported.
        """
        if self._loaded:
            raise PluginError("this plugin manager has already loaded its plugins; build a new one")
        self._loaded = True
        selection = self.selection
        entry_points = iter_plugin_entry_points()
        requested = selection.all_requested()
        matched: set[str] = set()
        chosen: dict[str, PluginEntryPoint] = {}
        for ep in entry_points:
            info = dict(distribution=ep.distribution, version=ep.version, origin="entry-point", target=ep.value)
            if self._blocked_by(ep.name, ep.distribution, ep.value):
                self.plugin_infos[ep.name] = PluginInfo(ep.name, status="blocked", **info)
                continue
            named = [name for name in requested if _names_entry_point(name, ep)]
            matched.update(named)
            is_core = bool(ep.distribution) and normalize_distribution_name(ep.distribution) == CORE_DISTRIBUTION
            if not (is_core or selection.autoload or named):
                self.plugin_infos[ep.name] = PluginInfo(ep.name, status="not loaded", **info)
                continue
            if ep.name in chosen:
                raise DuplicateNameError(_same_plugin_name_message(chosen[ep.name], ep))
            chosen[ep.name] = ep
            self._load_entry_point(ep, named[0] if named else None)
        for name in requested:
            if name in matched:
                continue
            if self._blocked_by(name, self._module_distribution(name)[0], name):
                continue  # -p x -p no:x: blocking wins, and nothing is imported
            self._load_module(name, entry_points)
        self._warn_unused_blocks(entry_points)
        return self

    def _module_distribution(self, module_name: str) -> tuple[str | None, str | None]:
        """The distribution of a ``-p`` module path, reading the installed RECORDs once per load."""
        if self._packages is None:
            try:
                self._packages = importlib.metadata.packages_distributions()
            except Exception:  # a broken distribution on sys.path must not stop loading
                self._packages = {}
        return distribution_of_module(module_name, self._packages)

    def _blocked_by(self, name: str, distribution: str | None, value: str) -> str | None:
        """The ``-p no:`` name that blocks this plugin, if any."""
        module = value.partition(":")[0]
        for blocked in self.selection.blocked:
            if blocked in (name, module) or module.startswith(blocked + "."):
                return blocked
            if distribution and normalize_distribution_name(blocked) == normalize_distribution_name(distribution):
                return blocked
        return None

    def _warn_unused_blocks(self, entry_points: list[PluginEntryPoint]) -> None:
        requested = self.selection.all_requested()
        for blocked in self.selection.blocked:
            hits_ep = any(self._blocked_by(ep.name, ep.distribution, ep.value) == blocked for ep in entry_points)
            hits_request = any(self._blocked_by(r, self._module_distribution(r)[0], r) == blocked
                               for r in requested if not any(_names_entry_point(r, ep) for ep in entry_points))
            if not (hits_ep or hits_request):
                candidates = sorted({ep.name for ep in entry_points} | {ep.distribution for ep in entry_points
                                                                       if ep.distribution})
                close = difflib.get_close_matches(blocked, candidates, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                warnings.warn(
                    f"-p no:{blocked} matches no installed plugin, distribution or requested module; "
                    f"nothing was blocked.{hint} Installed plugins: {_installed_list(entry_points)}.",
                    MilesPluginWarning, stacklevel=3,
                )

    def _load_entry_point(self, ep: PluginEntryPoint, requested_as: str | None) -> None:
        info = PluginInfo(ep.name, ep.distribution, ep.version, "active", origin="entry-point", target=ep.value)
        try:
            plugin = ep.load()
            self._add_plugin(plugin, info)
        except Exception as exc:
            self._plugin_failed(info, exc, requested_as)

    def _load_module(self, module_name: str, entry_points: list[PluginEntryPoint]) -> None:
        distribution, version = self._module_distribution(module_name)
        info = PluginInfo(module_name, distribution, version, "active", origin="module", target=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                raise UnknownNameError(self._unknown_plugin_message(module_name, entry_points)) from exc
            self._plugin_failed(info, exc, module_name)  # the module exists; something it imports does not
            return
        except Exception as exc:
            self._plugin_failed(info, exc, module_name)
            return
        try:
            self._add_plugin(module, info)
        except Exception as exc:
            self._plugin_failed(info, exc, module_name)

    def _unknown_plugin_message(self, name: str, entry_points: list[PluginEntryPoint]) -> str:
        message = (f"{self.selection.origin_of(name)}: no installed plugin, distribution or importable module "
                   f"has this name.")
        for distribution, (ep_name, module) in FIRST_PARTY_DISTRIBUTIONS.items():
            if name in (ep_name, module) or normalize_distribution_name(name) == distribution:
                message += f" {name!r} is provided by {distribution}: pip install {distribution}."
                break
        else:
            candidates = sorted({ep.name for ep in entry_points} | {ep.distribution for ep in entry_points if ep.distribution})
            close = difflib.get_close_matches(name, candidates, n=1)
            if close:
                message += f" Did you mean {close[0]!r}?"
        return message + f" Installed plugins: {_installed_list(entry_points)}."

    def _plugin_failed(self, info: PluginInfo, exc: Exception, requested_as: str | None) -> None:
        where = f"plugin {info.name!r}"
        if info.distribution:
            where += f" from {info.distribution} {info.version or ''}".rstrip()
        reason = _error_text(exc)
        if requested_as is not None or self.selection.strict:
            why = (f"it was named with {self.selection.origin_of(requested_as)}" if requested_as is not None
                   else "MILES_STRICT_PLUGINS is set")
            raise PluginError(
                f"{where} failed to load: {reason}\nThis is an error because {why}. Fix or uninstall "
                f"{info.distribution or info.name}, or leave it out with -p no:{info.name}."
            ) from exc
        info.status, info.error, info.provides, info.hooks = "failed", reason, {}, []
        self.plugin_infos[info.name] = info
        warnings.warn(
            f"{where} failed to load and is skipped: {reason}\n"
            f"Disable it with -p no:{info.name}, or set MILES_STRICT_PLUGINS=1 to make this an error.",
            MilesPluginWarning, stacklevel=4,
        )

    # ------------------------------------------------------------------------------------ registration

    def _add_plugin(self, plugin: Any, info: PluginInfo) -> None:
        """Register ``plugin`` and collect its specs now, so a broken one fails as a whole, at load."""
        if inspect.isclass(plugin):
            plugin = plugin()  # a class with hook methods: instantiate it, as pytest does for entry-point classes
        if self.is_registered(plugin):
            raise PluginError(f"{plugin!r} is already registered as plugin {self.get_name(plugin)!r}")
        if info.name in self.plugin_infos and self.plugin_infos[info.name].status == "active":
            raise PluginError(f"a plugin named {info.name!r} is already registered; pick another name")
        self.register(plugin, name=info.name)
        try:
            unknown = sorted(self._unknown_hooks(plugin))
            if unknown:
                raise PluginError("; ".join(_unknown_hook_message(hook) for hook in unknown))
            provenance = info.provenance
            specs = list(self._collect_specs(plugin, provenance))
        except BaseException:
            self.unregister(plugin)
            raise
        info.provides = {}
        for kind, spec, _ in specs:
            info.provides.setdefault(kind, []).append(spec.name)
        info.hooks = sorted(impl_name for impl_name, caller in vars(self.hook).items()
                            if any(impl.plugin is plugin for impl in caller.get_hookimpls()))
        self.plugin_infos[info.name] = info
        self._plugin_specs[info.name] = specs
        self._registries = None

    def _unknown_hooks(self, plugin: Any) -> Iterable[str]:
        for hook_name, caller in vars(self.hook).items():
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.optionalhook:
                    yield hook_name

    def _collect_specs(self, plugin: Any, provenance: Provenance) -> Iterable[tuple[str, Any, Provenance]]:
        for kind, hook_name in KINDS.items():
            expected = SPEC_TYPES[hook_name]
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                if impl.hookwrapper or impl.wrapper:
                    raise PluginError(f"{hook_name} cannot be a wrapper: it only yields {expected.__name__} specs")
                try:
                    result = impl.function()
                except Exception as exc:
                    raise PluginError(f"{hook_name}() raised {type(exc).__name__}: {exc}") from exc
                if result is None:
                    continue
                if isinstance(result, expected) or not isinstance(result, Iterable):
                    raise PluginError(
                        f"{hook_name}() must yield {expected.__name__} specs (or return a list of them), "
                        f"got {type(result).__name__}"
                    )
                try:
                    specs = list(result)
                except Exception as exc:
                    raise PluginError(f"{hook_name}() raised {type(exc).__name__}: {exc}") from exc
                for spec in specs:
                    if not isinstance(spec, expected):
                        raise PluginError(
                            f"{hook_name}() yielded {type(spec).__name__} {getattr(spec, 'name', spec)!r}, "
                            f"expected {expected.__name__}"
                        )
                    yield kind, spec, provenance

    def register_plugin(self, plugin: Any, name: str | None = None, provenance: Provenance | None = None,
                        *, origin: str = "object", target: str | None = None) -> str:
        """Register an object, class or module with ``miles_*`` hooks; return the name it got.

        Used by tests (``miles_core.testing``'s ``register_plugin`` fixture) and by the
        ``--custom-megatron-*-hook-path`` flags. Any problem is a :class:`PluginError` naming the plugin.
        """
        name = name or (plugin.__name__ if isinstance(plugin, ModuleType) else
                        getattr(plugin, "__name__", None) or type(plugin).__name__)
        prov = provenance or Provenance(name)
        info = PluginInfo(name, prov.distribution, prov.version, "active", origin=origin, target=target)
        try:
            self._add_plugin(plugin, info)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {_error_text(exc)}") from exc
        return name

    def unregister_plugin(self, name: str) -> None:
        """Undo :meth:`register_plugin` (or a loaded plugin): its hooks, specs and listing entry go."""
        if self.get_plugin(name) is not None:
            self.unregister(name=name)
        self.plugin_infos.pop(name, None)
        self._plugin_specs.pop(name, None)
        self._registries = None

    # --------------------------------------------------------------------------------------- registries

    def add_adhoc_spec(self, kind: str, spec: Any, source: str) -> None:
        """Register a spec built from a ``--*-path`` flag.

        ``source`` is the flag and its value (``"--custom-rm-path my.mod:fn"``); listings and errors show it
        as the spec's provenance. Adding the same spec name again from the same source replaces it, so
        registering the path flags twice is harmless.
        """
        kind = kind.removeprefix("miles_")
        if kind not in KINDS:
            raise ValueError(f"unknown registry {kind!r}; one of {sorted(KINDS)}")
        expected = SPEC_TYPES[KINDS[kind]]
        if not isinstance(spec, expected):
            raise TypeError(f"{source}: a {kind} spec must be {expected.__name__}, got {type(spec).__name__}")
        flag, _, target = source.partition(" ")
        self._adhoc[(kind, spec.name)] = (spec, Provenance(source))
        info = self.plugin_infos.get(flag)
        if info is None or info.origin != "flag":
            info = self.plugin_infos[flag] = PluginInfo(flag, None, None, "active", origin="flag", target=target)
        info.target = target
        info.provides = {kind: [spec.name]}
        self._registries = None

    def iter_specs(self) -> Iterable[tuple[str, Any, Provenance]]:
        """Every ``(kind, spec, provenance)`` of the loaded plugins, then the ad-hoc ones, unchecked.

        For listings: unlike :meth:`registries` this does not fail on duplicate names.
        """
        for specs in self._plugin_specs.values():
            yield from specs
        for (kind, _), (spec, provenance) in self._adhoc.items():
            yield kind, spec, provenance

    def conflicts(self) -> str | None:
        """The duplicate-name error :meth:`registries` would raise, or ``None``."""
        try:
            build_registries(self.iter_specs())
        except DuplicateNameError as exc:
            return str(exc)
        return None

    def registries(self) -> dict[str, Registry]:
        """All registries, built on first use from every loaded plugin's specs and the ad-hoc specs.

        Raises :class:`DuplicateNameError` naming every provider when two plugins use one name.
        """
        if self._registries is None:
            self._registries = build_registries(self.iter_specs())
        return self._registries

    def registry(self, kind: str) -> Registry:
        """The registry of one kind: ``reward_models`` (or the hook name ``miles_reward_models``)."""
        kind = kind.removeprefix("miles_")
        if kind not in KINDS:
            raise ValueError(f"unknown registry {kind!r}; one of {sorted(KINDS)}")
        return self.registries()[kind]

    def get(self, kind: str, name: str, *, flag: str | None = None) -> Any:
        """Shorthand for ``registry(kind).get(name, flag=flag)``."""
        return self.registry(kind).get(name, flag=flag)

    def provenance(self, kind: str, name: str) -> Provenance:
        return self.registry(kind).provenance(name)


def _installed_list(entry_points: list[PluginEntryPoint]) -> str:
    listed = [f"{ep.name} ({ep.distribution})" if ep.distribution else ep.name for ep in entry_points]
    return ", ".join(listed) or "none"


def _unknown_hook_message(hook: str) -> str:
    close = difflib.get_close_matches(hook, HOOK_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "see miles_core.plugins.hookspecs for the hooks"
    return f"{hook} is not a miles hook ({hint})"


def _same_plugin_name_message(first: PluginEntryPoint, second: PluginEntryPoint) -> str:
    def describe(ep: PluginEntryPoint) -> str:
        return f"{ep.distribution} {ep.version} ({ep.name} = {ep.value})"

    return (f"two installed distributions declare a plugin named {first.name!r}: {describe(first)} and "
            f"{describe(second)}. Uninstall one, or block one by its distribution name: "
            f"-p no:{first.distribution} or -p no:{second.distribution}.")


def _names_entry_point(name: str, ep: PluginEntryPoint) -> bool:
    """``-p name`` selects ``ep`` by entry-point name, distribution, module or a package of the module."""
    module = ep.value.partition(":")[0]
    if name in (ep.name, module) or module.startswith(name + "."):
        return True
    return bool(ep.distribution) and normalize_distribution_name(name) == normalize_distribution_name(ep.distribution)


def build_plugin_manager(selection: PluginSelection | Mapping[str, Any] | None = None) -> MilesPluginManager:
    """Build and load a manager for ``selection`` (a :class:`PluginSelection` or its ``to_dict()``).

    With no selection, the options come from this process's environment (``MILES_PLUGINS``, ...).
    """
    if selection is None:
        selection = PluginSelection.from_options()
    elif not isinstance(selection, PluginSelection):
        selection = PluginSelection.from_dict(selection)
    return MilesPluginManager(selection).load_selected()


def plugin_manager_from_args(args: Any) -> MilesPluginManager:
    """Rebuild the driver's manager in another process (a Ray worker) from the parsed args alone.

    Uses ``args.plugin_selection`` (stored at parse time) and registers the ad-hoc specs of the
    ``--*-path`` flags again, so the worker sees exactly the registries the driver validated.
    """
    pm = build_plugin_manager(getattr(args, "plugin_selection", None))
    from miles_core.plugins.path_flags import register_path_specs

    register_path_specs(pm, args)
    return pm
