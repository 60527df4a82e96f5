"""Which ``ModelSpec`` fits a checkpoint: by ``--model-spec NAME``, else by its HF config.

The Megatron backend (and anything else that converts weights) calls :func:`resolve_model_spec` once per
run. A checkpoint that no installed plugin knows is an error that names its architecture and model type,
lists the installed specs, and says which package to ``pip install`` when a first-party one provides it.

Reading the HF config needs no transformers: a checkpoint directory or ``config.json`` is read as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miles_core.plugins.errors import PluginError
from miles_core.plugins.registry import KNOWN_PROVIDERS
from miles_core.plugins.types import ModelSpec

if TYPE_CHECKING:
    from miles_core.plugins.manager import MilesPluginManager

__all__ = ["ModelSpecResolutionError", "load_hf_config", "resolve_model_spec"]


class ModelSpecResolutionError(PluginError, ValueError):
    """No installed model spec fits the checkpoint, or several do and none was named."""


def load_hf_config(hf_config_or_dir: Any) -> Any:
    """An HF config as given (object or mapping), or read from a checkpoint directory / ``config.json``."""
    if isinstance(hf_config_or_dir, (str, Path)):
        path = Path(hf_config_or_dir)
        config_file = path / "config.json" if path.is_dir() else path
        if not config_file.is_file():
            raise FileNotFoundError(
                f"{path}: no config.json found; --hf-checkpoint must be an HF checkpoint directory (or its config.json)"
            )
        try:
            return json.loads(config_file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{config_file}: not valid JSON ({exc})") from exc
    return hf_config_or_dir


def _field(hf_config: Any, key: str) -> Any:
    if isinstance(hf_config, Mapping):
        return hf_config.get(key)
    return getattr(hf_config, key, None)


def _describe_installed(pm: MilesPluginManager) -> str:
    registry = pm.registry("model_specs")
    if not len(registry):
        return "none"
    parts = []
    for spec in sorted(registry, key=lambda s: s.name):
        knows = ", ".join(spec.hf_architectures + spec.hf_model_types) or "no HF names"
        parts.append(f"{spec.name} ({knows}; from {registry.provenance(spec.name).describe()})")
    return "; ".join(parts)


def resolve_model_spec(pm: MilesPluginManager, hf_config_or_dir: Any, name: str | None = None) -> ModelSpec:
    """The model spec for a checkpoint.

    :param pm: a loaded plugin manager.
    :param hf_config_or_dir: an HF config object or dict, a ``config.json`` path or a checkpoint directory.
        Unused when ``name`` is given.
    :param name: the ``--model-spec`` value; when set it wins over matching (an unknown name is an error
        listing the installed specs).
    :raises ModelSpecResolutionError: nothing matches, or several specs match and none was named.
    """
    registry = pm.registry("model_specs")
    if name:
        return registry.get(name, flag="--model-spec")

    hf_config = load_hf_config(hf_config_or_dir)
    architectures = list(_field(hf_config, "architectures") or ())
    model_type = _field(hf_config, "model_type")
    # An architecture match is more specific than a model-type match (a family may share its model_type).
    by_architecture = [s for s in registry if set(architectures) & set(s.hf_architectures)]
    candidates = by_architecture or [s for s in registry if s.matches(hf_config)]
    if len(candidates) == 1:
        return candidates[0]

    what = f"architecture {', '.join(architectures) or '(none)'} (model_type {model_type!r})"
    if candidates:
        names = ", ".join(f"{s.name} (from {registry.provenance(s.name).describe()})"
                          for s in sorted(candidates, key=lambda spec: spec.name))
        raise ModelSpecResolutionError(
            f"several model specs match {what}: {names}. Choose one with --model-spec NAME."
        )
    message = (
        f"no installed model spec knows {what}. Installed model specs: {_describe_installed(pm)}."
    )
    provider = KNOWN_PROVIDERS.get(("model_specs", model_type)) if model_type else None
    if provider:
        message += f" {model_type!r} checkpoints are supported by {provider}: pip install {provider}"
        message += " (or check that it is not blocked with -p no:)."
    else:
        message += (" Pick a compatible spec with --model-spec NAME, give one with --spec MODULE FN, or install"
                    " a plugin that registers this architecture through the miles_model_specs hook.")
    raise ModelSpecResolutionError(message)
