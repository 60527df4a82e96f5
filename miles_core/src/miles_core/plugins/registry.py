"""Registries: the specs of one kind by name, each with the plugin (or flag) that gave it.

A run never asks "which plugin loaded last"; it asks a registry for the name the user gave
(``--rm-type math``). An unknown name is an error that lists what is available and, for names a
first-party package provides, the ``pip install`` that would add it. Two providers of one name are an
error naming every provider (conda's conflict report).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from miles_core.plugins.errors import DuplicateNameError, UnknownNameError
from miles_core.plugins.types import SPEC_TYPES, Provenance

__all__ = [
    "KINDS",
    "KNOWN_PROVIDERS",
    "FIRST_PARTY_DISTRIBUTIONS",
    "Registry",
    "build_registries",
    "describe_provenance",
    "kind_label",
]

#: Short registry names ("reward_models") ↔ registration hook names ("miles_reward_models").
KINDS: dict[str, str] = {hook.removeprefix("miles_"): hook for hook in SPEC_TYPES}

#: First-party distributions that are installed separately: distribution → (entry-point name, module).
FIRST_PARTY_DISTRIBUTIONS: dict[str, tuple[str, str]] = {
    "miles-rm-math": ("rm_math", "miles_rm_math"),
    "miles-filters-dapo": ("filters_dapo", "miles_filters_dapo"),
    "miles-models-qwen": ("models_qwen", "miles_models_qwen"),
}

#: Names users may select that a first-party package they may not have installed provides.
#: Used only to make "unknown name" errors say which ``pip install`` would help.
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    **{("reward_models", n): "miles-rm-math" for n in (
        "math", "dapo", "deepscaler", "gemma_math", "boxed_math", "boxed_dapo", "boxed_deepscaler", "boxed_gemma_math")},
    ("filters", "nonzero_std"): "miles-filters-dapo",
    ("filters", "check_reward_nonzero_std"): "miles-filters-dapo",
    ("filters", "mask_truncated"): "miles-filters-dapo",
    ("filters", "freshest_first"): "miles-filters-dapo",
    **{("model_specs", n): "miles-models-qwen" for n in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe")},
}


def kind_label(kind: str) -> str:
    """``reward_models`` → ``reward model`` (for messages)."""
    return kind.removesuffix("s").replace("_", " ")


def describe_provenance(provenance: Provenance) -> str:
    """``miles-rm-math 0.1.0 (plugin 'rm_math')``; an ad-hoc spec's provenance is its flag and path."""
    if provenance.plugin.startswith("--"):
        return provenance.plugin
    return provenance.describe()


def _block_hint(provenance: Provenance) -> str | None:
    if provenance.plugin.startswith("--"):
        return None  # a flag: the user removes the flag, there is nothing to block
    return f"-p no:{provenance.plugin}"


class Registry:
    """The specs of one kind, by name, in registration order, each with its :class:`Provenance`."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown registry {kind!r}; one of {sorted(KINDS)}")
        self.kind = kind
        self.spec_type: type = SPEC_TYPES[KINDS[kind]]
        self._specs: dict[str, Any] = {}
        self._provenance: dict[str, Provenance] = {}

    def add(self, spec: Any, provenance: Provenance) -> None:
        """Add one spec; a second spec of the same name is a :class:`DuplicateNameError`."""
        if not isinstance(spec, self.spec_type):
            raise TypeError(
                f"{describe_provenance(provenance)}: {KINDS[self.kind]} gave {type(spec).__name__}, "
                f"expected {self.spec_type.__name__}"
            )
        if spec.name in self._specs:
            raise DuplicateNameError(_conflict_message(self.kind, {spec.name: [self._provenance[spec.name], provenance]}))
        self._specs[spec.name] = spec
        self._provenance[spec.name] = provenance

    def names(self) -> list[str]:
        return sorted(self._specs)

    def provenance(self, name: str) -> Provenance:
        self.get(name)  # the same error as get() for an unknown name
        return self._provenance[name]

    def items(self) -> Iterator[tuple[Any, Provenance]]:
        """``(spec, provenance)`` pairs in registration order."""
        for name, spec in self._specs.items():
            yield spec, self._provenance[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[Any]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    def get(self, name: str, *, flag: str | None = None) -> Any:
        """The spec called ``name``; an unknown name is an :class:`UnknownNameError` listing what is available.

        ``flag`` (``"--rm-type"``) makes the message name the flag the user typed.
        """
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            pass
        raise UnknownNameError(unknown_name_message(self.kind, name, self.names(), flag=flag))


def unknown_name_message(kind: str, name: Any, available: list[str], *, flag: str | None = None) -> str:
    """``unknown --rm-type 'mth'. Available: a, b. Did you mean 'math'? ...`` plus the install hint."""
    what = f"{flag} {name!r}" if flag else f"{kind_label(kind)} {name!r}"
    message = f"unknown {what}. Available: {', '.join(available) or 'none'}."
    close = difflib.get_close_matches(str(name), available, n=1) if available else []
    if close:
        message += f" Did you mean {close[0]!r}?"
    provider = KNOWN_PROVIDERS.get((kind, str(name)))
    if provider:
        message += (f" {name!r} is provided by {provider}: pip install {provider}"
                    " (if it is installed, check that it is not blocked with -p no: or left out by MILES_PLUGINS).")
    elif not close:
        message += " Is the plugin that provides it installed? `miles plugins` lists what is."
    return message


def _conflict_message(kind: str, conflicts: dict[str, list[Provenance]]) -> str:
    lines = [f"conflicting plugins for {KINDS[kind]}: more than one plugin gives the same {kind_label(kind)} name."]
    hints: list[str] = []
    for name, providers in conflicts.items():
        lines.append(f"  - {name!r} provided by:")
        lines.extend(f"    - {describe_provenance(p)}" for p in providers)
        hints.extend(h for h in map(_block_hint, providers) if h)
    advice = "Uninstall all but one of them"
    if hints:
        advice += ", or block the ones you do not want with " + " / ".join(dict.fromkeys(hints))
    lines.append(advice + ".")
    return "\n".join(lines)


def build_registries(entries: Iterable[tuple[str, Any, Provenance]]) -> dict[str, Registry]:
    """Build every registry from ``(kind, spec, provenance)`` entries in order.

    Duplicates are collected over *all* entries first, so the error names every provider of every
    conflicting name at once (fix them all in one go, not one per run).
    """
    entries = list(entries)
    providers: dict[tuple[str, str], list[Provenance]] = {}
    for kind, spec, provenance in entries:
        providers.setdefault((kind, spec.name), []).append(provenance)
    conflicts: dict[str, dict[str, list[Provenance]]] = {}
    for (kind, name), found in providers.items():
        if len(found) > 1:
            conflicts.setdefault(kind, {})[name] = found
    if conflicts:
        raise DuplicateNameError("\n".join(_conflict_message(kind, c) for kind, c in sorted(conflicts.items())))
    registries = {kind: Registry(kind) for kind in KINDS}
    for kind, spec, provenance in entries:
        registries[kind].add(spec, provenance)
    return registries
