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
- Two plugins giving the same name in one registry is an error naming both providers.

The whole selection is a :class:`PluginSelection`, stored on the parsed args, so every Ray worker
rebuilds exactly the same manager from the args alone (no dependence on its environment).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterable, Mapping

import pluggy

from miles_core.plugins import hookspecs
from miles_core.plugins.loading import (
    PluginEntryPoint,
    iter_plugin_entry_points,
    normalize_distribution_name,
)
from miles_core.plugins.types import SPEC_TYPES, Provenance

CORE_DISTRIBUTION = "miles-core"

#: Names users may select that are provided by a first-party package they may not have installed.
#: Used only to make "unknown name" errors say which ``pip install`` would help.
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    **{("reward_models", n): "miles-rm-math" for n in (
        "math", "dapo", "deepscaler", "gemma_math", "boxed_math", "boxed_dapo", "boxed_deepscaler", "boxed_gemma_math")},
    ("filters", "nonzero_std"): "miles-filters-dapo",
    ("filters", "check_reward_nonzero_std"): "miles-filters-dapo",
    **{("model_specs", n): "miles-models-qwen" for n in ("qwen2", "qwen3", "qwen3_moe")},
}

#: Short registry names ("reward_models") ↔ registration hook names ("miles_reward_models").
KINDS: dict[str, str] = {hook.removeprefix("miles_"): hook for hook in SPEC_TYPES}


class PluginError(Exception):
    """A plugin problem the user must fix; the message says what to do."""


class UnknownNameError(PluginError, ValueError):
    pass


class DuplicateNameError(PluginError):
    pass


class MilesPluginWarning(UserWarning):
    pass


@dataclass(frozen=True)
class PluginSelection:
    """Which plugins to load: everything needed to rebuild the same manager in another process."""

    requested: tuple[str, ...] = ()  # -p NAME (and MILES_PLUGINS entries)
    blocked: tuple[str, ...] = ()  # -p no:NAME
    autoload: bool = True
    strict: bool = False

    @classmethod
    def from_options(
        cls, plugin_options: Iterable[str] = (), disable_autoload: bool = False, environ: Mapping[str, str] | None = None
    ) -> PluginSelection:
        """Combine ``-p`` options, ``--disable-plugin-autoload`` and the ``MILES_*`` environment variables."""
        env = os.environ if environ is None else environ
        requested: list[str] = []
        blocked: list[str] = []
        autoload = not (disable_autoload or _truthy(env.get("MILES_DISABLE_PLUGIN_AUTOLOAD")))
        if "MILES_PLUGINS" in env:
            autoload = False
            requested += [name.strip() for name in env["MILES_PLUGINS"].split(",") if name.strip()]
        for option in plugin_options:
            if option.startswith("no:"):
                name = option[3:].strip()
                if not name:
                    raise PluginError("-p no: needs a plugin name, as in '-p no:miles-rm-math'")
                blocked.append(name)
            else:
                requested.append(option.strip())
        return cls(tuple(requested), tuple(blocked), autoload, _truthy(env.get("MILES_STRICT_PLUGINS")))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginSelection:
        return cls(tuple(data["requested"]), tuple(data["blocked"]), bool(data["autoload"]), bool(data["strict"]))


def _truthy(value: str | None) -> bool:
    return bool(value) and value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass
class PluginInfo:
    """One plugin as ``miles plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # "active" | "blocked" | "failed" | "not loaded"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.name, self.distribution, self.version)


class Registry:
    """The specs of one kind, by name, each with the plugin that gave it."""

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, Any] = {}
        self._provenance: dict[str, Provenance] = {}

    def add(self, spec: Any, provenance: Provenance) -> None:
        expected = SPEC_TYPES[KINDS[self.kind]]
        if not isinstance(spec, expected):
            raise PluginError(
                f"{provenance.describe()}: miles_{self.kind} yielded {type(spec).__name__}, expected {expected.__name__}"
            )
        if spec.name in self._specs:
            first = self._provenance[spec.name]
            raise DuplicateNameError(
                f"two plugins provide {self.kind.rstrip('s').replace('_', ' ')} {spec.name!r}: "
                f"{first.describe()} and {provenance.describe()}. "
                f"Uninstall one, or block one with -p no:{provenance.plugin} (or -p no:{first.plugin})."
            )
        self._specs[spec.name] = spec
        self._provenance[spec.name] = provenance

    def names(self) -> list[str]:
        return sorted(self._specs)

    def provenance(self, name: str) -> Provenance:
        return self._provenance[name]

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str, *, flag: str | None = None) -> Any:
        """The spec called ``name``; an unknown name is an error listing what is available."""
        try:
            return self._specs[name]
        except KeyError:
            pass
        what = f"{flag} {name!r}" if flag else f"{self.kind.rstrip('s').replace('_', ' ')} {name!r}"
        available = ", ".join(self.names()) or "none"
        message = f"unknown {what}. Available: {available}."
        provider = KNOWN_PROVIDERS.get((self.kind, name))
        if provider is None and name.startswith("boxed_"):
            provider = KNOWN_PROVIDERS.get((self.kind, name.removeprefix("boxed_")))
        if provider:
            message += f" {name!r} is provided by {provider}: pip install {provider}"
            message += " (or check that it is not blocked with -p no:)."
        else:
            message += " Is the plugin that provides it installed?"
        raise UnknownNameError(message)


class MilesPluginManager(pluggy.PluginManager):
    """A pluggy manager that only looks at ``miles_*`` attributes and keeps per-plugin bookkeeping."""

    def __init__(self, selection: PluginSelection | None = None) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.selection = selection or PluginSelection()
        self.plugin_infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] | None = None
        self._adhoc: list[tuple[str, Any, Provenance]] = []

    # pytest's parse_hookimpl_opts: only attributes with our prefix can be hooks.
    def parse_hookimpl_opts(self, plugin: Any, name: str):  # type: ignore[override]
        if not name.startswith("miles_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    # ----------------------------------------------------------------------------------------- loading

    def load_selected(self) -> MilesPluginManager:
        """Load the built-ins, the autoloaded and the ``-p`` plugins, per :attr:`selection`."""
        selection = self.selection
        entry_points = iter_plugin_entry_points()
        requested = list(selection.requested)
        for ep in entry_points:
            if self._is_blocked(ep.name, ep.distribution, ep.value):
                self.plugin_infos[ep.name] = PluginInfo(ep.name, ep.distribution, ep.version, "blocked")
                continue
            named = [r for r in requested if _names_entry_point(r, ep)]
            for r in named:
                requested.remove(r)
            is_core = ep.distribution is not None and normalize_distribution_name(ep.distribution) == CORE_DISTRIBUTION
            if not (is_core or selection.autoload or named):
                self.plugin_infos[ep.name] = PluginInfo(ep.name, ep.distribution, ep.version, "not loaded")
                continue
            self._load_entry_point(ep, explicitly_requested=bool(named))
        # Whatever -p names no installed entry point is a module path.
        for name in dict.fromkeys(requested):
            if any(_names_entry_point(name, ep) for ep in entry_points):
                continue  # a distribution name whose entry points were all handled above
            if self._is_blocked(name, None, name):
                continue
            self._load_module(name)
        return self

    def _is_blocked(self, name: str, distribution: str | None, value: str) -> bool:
        module = value.partition(":")[0]
        for blocked in self.selection.blocked:
            if blocked == name or blocked == module or module.startswith(blocked + "."):
                return True
            if distribution and normalize_distribution_name(blocked) == normalize_distribution_name(distribution):
                return True
        return False

    def _load_entry_point(self, ep: PluginEntryPoint, *, explicitly_requested: bool) -> None:
        try:
            plugin = ep.load()
            self._register_checked(plugin, ep.name)
        except Exception as exc:
            self._plugin_failed(ep.name, ep.distribution, ep.version, exc, explicitly_requested)
            return
        self.plugin_infos[ep.name] = PluginInfo(ep.name, ep.distribution, ep.version, "active")

    def _load_module(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                installed = sorted({ep.name for ep in iter_plugin_entry_points()})
                raise PluginError(
                    f"-p {module_name}: no installed plugin, distribution or importable module has this name. "
                    f"Installed plugins: {', '.join(installed) or 'none'}."
                ) from exc
            self._plugin_failed(module_name, None, None, exc, True)
        except Exception as exc:
            self._plugin_failed(module_name, None, None, exc, True)
        else:
            self.register_plugin(module, module_name)

    def register_plugin(self, plugin: Any, name: str, provenance: Provenance | None = None) -> None:
        """Register an object or module with ``miles_*`` hooks under ``name`` (used by tests and ``-p``)."""
        try:
            self._register_checked(plugin, name)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc
        prov = provenance or Provenance(name)
        self.plugin_infos[name] = PluginInfo(name, prov.distribution, prov.version, "active")
        self._registries = None

    def _register_checked(self, plugin: Any, name: str) -> None:
        if isinstance(plugin, type) and not isinstance(plugin, ModuleType):
            plugin = plugin()  # a class with hook methods: instantiate it, as pytest does for entry-point classes
        self.register(plugin, name=name)
        unknown = [
            hook_name for hook_name, caller in vars(self.hook).items()
            if not caller.has_spec() and any(impl.plugin is plugin for impl in caller.get_hookimpls())
        ]
        if unknown:
            self.unregister(plugin)
            known = ", ".join(sorted(h for h in vars(self.hook) if getattr(self.hook, h).has_spec()))
            raise PluginError(f"unknown hook(s) {', '.join(sorted(unknown))}; the miles hooks are: {known}")

    def _plugin_failed(self, name: str, distribution: str | None, version: str | None, exc: Exception,
                       explicitly_requested: bool) -> None:
        where = f"plugin {name!r}" + (f" from {distribution} {version}" if distribution else "")
        reason = f"{type(exc).__name__}: {exc}"
        if self.selection.strict or explicitly_requested:
            why = "it was named with -p" if explicitly_requested else "MILES_STRICT_PLUGINS is set"
            raise PluginError(f"{where} failed to load ({reason}); this is an error because {why}.") from exc
        self.plugin_infos[name] = PluginInfo(name, distribution, version, "failed", error=reason)
        message = (f"{where} failed to load and is skipped: {reason}. "
                   f"Disable it with -p no:{name}, or set MILES_STRICT_PLUGINS=1 to make this an error.")
        warnings.warn(message, MilesPluginWarning, stacklevel=2)

    # --------------------------------------------------------------------------------------- registries

    def add_adhoc_spec(self, kind: str, spec: Any, source: str) -> None:
        """Register a spec built from a ``--*-path`` flag (``source`` says which, for listings and errors)."""
        if kind not in KINDS:
            raise ValueError(f"unknown registry {kind!r}; one of {sorted(KINDS)}")
        self._adhoc.append((kind, spec, Provenance(source)))
        self._registries = None

    def registries(self) -> dict[str, Registry]:
        """All registries, built on first use by calling every registration hook once per plugin."""
        if self._registries is None:
            registries = {kind: Registry(kind) for kind in KINDS}
            for kind, hook_name in KINDS.items():
                caller = getattr(self.hook, hook_name)
                for impl in caller.get_hookimpls():  # registration order
                    provenance = self._provenance_of(impl.plugin_name)
                    try:
                        specs = list(impl.function() or ())
                    except Exception as exc:
                        raise PluginError(
                            f"{provenance.describe()}: {hook_name}() raised {type(exc).__name__}: {exc}"
                        ) from exc
                    for spec in specs:
                        registries[kind].add(spec, provenance)
                        info = self.plugin_infos.get(impl.plugin_name)
                        if info is not None:
                            info.provides.setdefault(kind, []).append(spec.name)
            for kind, spec, provenance in self._adhoc:
                registries[kind].add(spec, provenance)
            self._registries = registries
        return self._registries

    def registry(self, kind: str) -> Registry:
        if kind.startswith("miles_"):
            kind = kind.removeprefix("miles_")
        try:
            return self.registries()[kind]
        except KeyError:
            raise ValueError(f"unknown registry {kind!r}; one of {sorted(KINDS)}") from None

    def get(self, kind: str, name: str, *, flag: str | None = None) -> Any:
        """Shorthand for ``registry(kind).get(name, flag=flag)``."""
        return self.registry(kind).get(name, flag=flag)

    def provenance(self, kind: str, name: str) -> Provenance:
        return self.registry(kind).provenance(name)

    def _provenance_of(self, plugin_name: str) -> Provenance:
        info = self.plugin_infos.get(plugin_name)
        return info.provenance if info else Provenance(plugin_name)


def _names_entry_point(name: str, ep: PluginEntryPoint) -> bool:
    if name == ep.name or name == ep.value.partition(":")[0]:
        return True
    return bool(ep.distribution) and normalize_distribution_name(name) == normalize_distribution_name(ep.distribution)


def build_plugin_manager(selection: PluginSelection | Mapping[str, Any] | None = None) -> MilesPluginManager:
    """Build and load a manager for ``selection`` (a :class:`PluginSelection` or its ``to_dict()``)."""
    if selection is not None and not isinstance(selection, PluginSelection):
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


if sys.version_info < (3, 11):  # pragma: no cover
    raise RuntimeError("miles-core needs Python 3.11 or newer")
