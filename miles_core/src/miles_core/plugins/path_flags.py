"""Miles's ``--*-path`` flags, as ad-hoc specs in the same registries the plugins fill.

Users coming from Miles or slime pass ``--custom-rm-path pkg.mod:fn`` (or ``pkg.mod.fn``). Rather than a
second code path, :func:`register_path_specs` imports each such object once, at validation time, wraps it
in the spec of its registry (``RewardModelSpec``, ``FilterSpec``, ...) and points the matching selection
flag at it (``args.rm_type``), so the rest of the run only ever reads registries. In ``miles plugins``
and in errors the spec's provenance is the flag and its path.

Three kinds of flags:

- **registry flags** (:data:`REGISTRY_PATH_FLAGS`): an ad-hoc spec plus a selection flag;
- **hook flags** (:data:`HOOK_PATH_FLAGS`): ``--custom-megatron-*-hook-path`` become small plugin objects
  implementing the matching lifecycle hook;
- **loaded flags** (:data:`LOADED_PATH_FLAGS`): functions used directly by one call site (the custom loss,
  TIS, log functions, ...); they are imported at validation time so a typo fails before any process
  starts, and call sites get them (cached) with :func:`load_path_flag`.

Everything is derived from ``args`` alone, so a Ray worker calling
``miles_core.plugins.manager.plugin_manager_from_args(args)`` gets the same registries as the driver.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from miles_core.plugins.errors import PathFlagError
from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.info import PluginInfo
from miles_core.plugins.legacy_adapters import adapt_generate_function, adapt_rollout_function
from miles_core.plugins.loading import load_object
from miles_core.plugins.types import (
    DataSourceSpec,
    FilterSpec,
    GenerateFunctionSpec,
    ModelSpec,
    Provenance,
    RewardModelSpec,
    RolloutFunctionSpec,
)

__all__ = [
    "REGISTRY_PATH_FLAGS",
    "HOOK_PATH_FLAGS",
    "LOADED_PATH_FLAGS",
    "RegistryPathFlag",
    "flag_name",
    "register_path_specs",
    "load_path_flag",
    "load_generate_function",
    "add_user_function_arguments",
    "clear_path_flag_cache",
]


def flag_name(dest: str) -> str:
    """``custom_rm_path`` → ``--custom-rm-path``."""
    return "--" + dest.replace("_", "-")


def _path_of(value: Any) -> str:
    """The flag's value as one string (``--spec`` takes two words: ``MODULE FN``)."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _description(obj: Any, source: str) -> str:
    """The first line of the object's docstring (what it does), else the flag it came from."""
    doc = (obj.__doc__ or "").strip() if inspect.isroutine(obj) or inspect.isclass(obj) else ""
    if doc:
        return doc.splitlines()[0].strip()
    return f"custom code from {source}"


def _spec_name(path: str) -> str:
    """The selectable name of an ad-hoc spec: the dotted path (``pkg.mod:fn`` → ``pkg.mod.fn``)."""
    return path.replace(":", ".").replace(" ", ".")


# ------------------------------------------------------------------------------------ registry flags


def _reward(obj: Any, name: str, source: str, args: Any) -> RewardModelSpec:
    return RewardModelSpec(name=name, description=_description(obj, source), fn=obj, batched=bool(getattr(args, "group_rm", False)))


def _data_source(obj: Any, name: str, source: str, args: Any) -> DataSourceSpec:
    return DataSourceSpec(name=name, description=_description(obj, source), factory=obj)


def _generate(obj: Any, name: str, source: str, args: Any) -> GenerateFunctionSpec:
    return GenerateFunctionSpec(name=name, description=_description(obj, source), fn=obj)


def _rollout(obj: Any, name: str, source: str, args: Any) -> RolloutFunctionSpec:
    return RolloutFunctionSpec(name=name, description=_description(obj, source), factory=obj)


def _filter(stage: str) -> Callable[[Any, str, str, Any], FilterSpec]:
    def build(obj: Any, name: str, source: str, args: Any) -> FilterSpec:
        return FilterSpec(name=name, description=_description(obj, source), fn=obj, stage=stage)  # type: ignore[arg-type]

    return build


def _layer_spec_of(obj: Any) -> Callable[..., Any]:
    """Megatron's ``--spec`` rule: call ``FN(args, config, vp_stage)``; a non-callable is the spec itself."""
    if callable(obj):
        return obj

    def constant_layer_spec(args: Any, config: Any, vp_stage: Any = None) -> Any:
        return obj

    return constant_layer_spec


def _model_spec(obj: Any, name: str, source: str, args: Any) -> ModelSpec:
    return ModelSpec(name=name, description=_description(obj, source), layer_spec=_layer_spec_of(obj))


@dataclass(frozen=True)
class RegistryPathFlag:
    """A path flag that becomes an ad-hoc spec of ``kind`` and sets ``args.<selects>`` to its name."""

    dest: str
    kind: str
    selects: str
    build: Callable[[Any, str, str, Any], Any]  # (object, spec name, source, args) -> spec
    must_be_callable: bool = True

    @property
    def flag(self) -> str:
        return flag_name(self.dest)


REGISTRY_PATH_FLAGS: tuple[RegistryPathFlag, ...] = (
    RegistryPathFlag("custom_rm_path", "reward_models", "rm_type", _reward),
    RegistryPathFlag("data_source_path", "data_sources", "data_source", _data_source),
    RegistryPathFlag("custom_generate_function_path", "generate_functions", "generate_function", _generate),
    RegistryPathFlag("rollout_function_path", "rollout_functions", "rollout_function", _rollout),
    RegistryPathFlag("dynamic_sampling_filter_path", "filters", "dynamic_sampling_filter", _filter("dynamic_sampling")),
    RegistryPathFlag("buffer_filter_path", "filters", "buffer_filter", _filter("buffer")),
    RegistryPathFlag("rollout_sample_filter_path", "filters", "rollout_sample_filter", _filter("sample")),
    RegistryPathFlag("spec", "model_specs", "model_spec", _model_spec, must_be_callable=False),
)

# ---------------------------------------------------------------------------------------- hook flags


class _BeforeLogProbFlag:
    """``--custom-megatron-before-log-prob-hook-path``: ``f(args, model, store_prefix)``."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    @hookimpl
    def miles_before_log_prob(self, args: Any, model: Any, store_prefix: str) -> None:
        self.fn(args, model, store_prefix)


class _BeforeTrainStepFlag:
    """``--custom-megatron-before-train-step-hook-path``: ``f(args, rollout_id, step_id, model, optimizer, scheduler)``."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    @hookimpl
    def miles_before_train_step(self, args: Any, rollout_id: int, step_id: int, model: Any, optimizer: Any,
                                lr_scheduler: Any) -> None:
        self.fn(args, rollout_id, step_id, model, optimizer, lr_scheduler)


class _AfterSaveFlag:
    """``--custom-megatron-post-save-hook-path``: ``f(args, rollout_id, checkpoint_dir, hf_checkpoint_dir)``."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    @hookimpl
    def miles_after_save(self, args: Any, rollout_id: int, checkpoint_dir: str, hf_checkpoint_dir: str | None) -> None:
        self.fn(args, rollout_id, checkpoint_dir, hf_checkpoint_dir)


#: dest → the plugin class wrapping the function (one lifecycle hook each).
HOOK_PATH_FLAGS: dict[str, type] = {
    "custom_megatron_before_log_prob_hook_path": _BeforeLogProbFlag,
    "custom_megatron_before_train_step_hook_path": _BeforeTrainStepFlag,
    "custom_megatron_post_save_hook_path": _AfterSaveFlag,
}

# -------------------------------------------------------------------------------------- loaded flags

#: Flags used directly by one call site; imported at validation time, read with :func:`load_path_flag`.
LOADED_PATH_FLAGS: tuple[str, ...] = (
    "custom_loss_function_path",
    "custom_rollout_log_function_path",
    "custom_eval_rollout_log_function_path",
    "custom_reward_post_process_path",
    "custom_tis_function_path",
    "custom_pg_loss_reducer_function_path",
    "eval_function_path",
    "custom_megatron_init_path",
)

#: Flags whose loaded object is adapted from a legacy call form (see ``legacy_adapters``).
_ADAPTERS: dict[str, Callable[[Any], Any]] = {
    "custom_generate_function_path": adapt_generate_function,
    "rollout_function_path": adapt_rollout_function,
    "eval_function_path": adapt_rollout_function,
}

_CACHE: dict[tuple[str, str], Any] = {}


def clear_path_flag_cache() -> None:
    """Forget every imported path (tests that reload a module under the same path use this)."""
    _CACHE.clear()


def _import(dest: str, value: Any, *, must_be_callable: bool = True, flag: str | None = None) -> Any:
    """Import the raw object of ``--<dest> value``, cached; errors name the flag (or ``flag``) and the path."""
    path = _path_of(value)
    key = (dest, path)
    if key in _CACHE:
        return _CACHE[key]
    flag = flag or flag_name(dest)
    if isinstance(value, (list, tuple)):  # --spec MODULE FN
        if len(value) != 2:
            raise PathFlagError(f"{flag} {path!r}: expected two words, MODULE FN (as in '{flag} my_pkg.spec get_spec')")
        target = f"{value[0]}:{value[1]}"
    else:
        target = path
    try:
        obj = load_object(target, flag=flag)
    except ImportError as exc:
        raise PathFlagError(str(exc)) from exc
    if must_be_callable and not callable(obj):
        raise PathFlagError(f"{flag} {path!r}: expected a function or class, got {type(obj).__name__} {obj!r}")
    _CACHE[key] = obj
    return obj


def _adapted(dest: str, path: str, obj: Any) -> Any:
    adapter = _ADAPTERS.get(dest)
    if adapter is None:
        return obj
    key = (dest + ":adapted", path)
    if key not in _CACHE:
        try:
            _CACHE[key] = adapter(obj)
        except Exception as exc:
            raise PathFlagError(f"{flag_name(dest)} {path!r}: {type(exc).__name__}: {exc}") from exc
    return _CACHE[key]


def load_path_flag(args: Any, dest: str) -> Any:
    """The object named by ``args.<dest>`` (``None`` when the flag is unset), imported once and cached.

    For ``custom_generate_function_path`` the result is the ``GenerateFnInput`` form, and for
    ``rollout_function_path`` / ``eval_function_path`` a rollout factory: legacy Miles forms are adapted
    (see :mod:`miles_core.plugins.legacy_adapters`). Other flags give the imported object as is.
    Errors are :class:`~miles_core.plugins.errors.PathFlagError` naming the flag and the path.
    """
    value = getattr(args, dest, None)
    if not value:
        return None
    obj = _import(dest, value, must_be_callable=dest != "spec")
    return _adapted(dest, _path_of(value), obj)


def load_generate_function(path: str, *, source: str = "--custom-generate-function-path") -> Callable[..., Any]:
    """A generate function named by a path outside the flags (an eval dataset's ``custom_generate_function_path``).

    The result is in the ``GenerateFnInput`` form (a legacy function is adapted). ``source`` names where
    the path came from, for errors (``"eval dataset 'aime' custom_generate_function_path"``).
    """
    obj = _import("custom_generate_function_path", path, flag=source)
    return _adapted("custom_generate_function_path", path, obj)


def _check(flag: str, path: str, build: Callable[..., Any], *build_args: Any) -> Any:
    """``build(*build_args)``; a spec's own ``ValueError``/``TypeError`` is reported with the flag and path."""
    try:
        return build(*build_args)
    except PathFlagError:
        raise
    except (TypeError, ValueError) as exc:
        raise PathFlagError(f"{flag} {path!r}: {exc}") from exc


def register_path_specs(pm: Any, args: Any) -> None:
    """Turn every ``--*-path`` flag set on ``args`` into registry specs, hook plugins or checked imports.

    Sets the selection flag of each registry flag (``--custom-rm-path`` sets ``args.rm_type``). Safe to
    call twice on one manager (the driver validates, then a command may call it again).
    """
    for path_flag in REGISTRY_PATH_FLAGS:
        value = getattr(args, path_flag.dest, None)
        if not value:
            continue
        path = _path_of(value)
        obj = _import(path_flag.dest, value, must_be_callable=path_flag.must_be_callable)
        obj = _adapted(path_flag.dest, path, obj)  # legacy generate/rollout forms; the object load_path_flag gives
        name, source = _spec_name(path), f"{path_flag.flag} {path}"
        spec = _check(path_flag.flag, path, path_flag.build, obj, name, source, args)
        pm.add_adhoc_spec(path_flag.kind, spec, source)
        setattr(args, path_flag.selects, name)

    for dest, plugin_class in HOOK_PATH_FLAGS.items():
        value = getattr(args, dest, None)
        if not value:
            continue
        path, flag = _path_of(value), flag_name(dest)
        plugin = plugin_class(_import(dest, value))
        if pm.get_plugin(flag) is not None:
            pm.unregister_plugin(flag)
        pm.register_plugin(plugin, name=flag, provenance=Provenance(f"{flag} {path}"), origin="flag", target=path)

    for dest in LOADED_PATH_FLAGS:
        value = getattr(args, dest, None)
        if value:
            load_path_flag(args, dest)  # fail fast, before any process starts
            _record_loaded_flag(pm, flag_name(dest), _path_of(value))


def _record_loaded_flag(pm: Any, flag: str, path: str) -> None:
    """List a loaded flag in ``miles plugins`` as custom code the run uses (it provides no spec)."""
    infos = getattr(pm, "plugin_infos", None)
    if infos is not None and (flag not in infos or infos[flag].origin == "flag"):
        infos[flag] = PluginInfo(flag, None, None, "active", origin="flag", target=path)


def add_user_function_arguments(parser: argparse.ArgumentParser, args: Any) -> None:
    """Miles's ``add_arguments(parser)`` convention for custom rollout and generate functions.

    A function (or class) named by ``--rollout-function-path`` or ``--custom-generate-function-path`` may
    carry an ``add_arguments(parser)`` attribute that adds its own flags; call this with the pre-parsed
    known args before the final parse.
    """
    for dest in ("rollout_function_path", "custom_generate_function_path"):
        value = getattr(args, dest, None)
        if not value:
            continue
        add_arguments = getattr(_import(dest, value), "add_arguments", None)
        if callable(add_arguments):
            add_arguments(parser)
