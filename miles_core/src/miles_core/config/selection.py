"""Component selection: each selection flag names a spec in a plugin registry.

After parsing, every selection flag that the run will use is looked up with
``pm.get(kind, name, flag=...)``, whose error lists the names that are available and which package
would provide a missing one. Derived choices are filled in here too:

- ``--rollout-engine auto`` becomes ``sglang`` where that engine says it can run, else ``embedded``;
- an unset ``--model-spec`` becomes the spec whose architectures match the checkpoint's config.json;
- an estimator that needs a critic (PPO) sets ``args.use_critic`` and the critic's defaults; one that
  needs a teacher (on-policy distillation) needs ``--opd-teacher-url``.

The result for each component is kept in :class:`Selection` (spec + provenance), which the plan
printout uses; ``args`` itself holds only names, so it stays picklable for Ray workers.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miles_core.config.errors import ConfigError
from miles_core.plugins.errors import PluginError

__all__ = ["SelectionFlag", "SELECTION_FLAGS", "Selection", "resolve_selections", "active_loggers"]


@dataclass(frozen=True)
class SelectionFlag:
    """A flag whose value names a spec: where it is stored, which registry, and when the run needs it."""

    dest: str
    kind: str  # registry name: "reward_models", "filters", …
    flag: str
    label: str  # how the plan calls the component
    side: str  # "rollout" (not needed when rollouts are replayed), "train" (not with --debug-rollout-only), "both"
    stage: str | None = None  # for filters: the FilterSpec.stage the named filter must have


SELECTION_FLAGS: tuple[SelectionFlag, ...] = (
    SelectionFlag("data_source", "data_sources", "--data-source", "data source", "rollout"),
    SelectionFlag("rollout_function", "rollout_functions", "--rollout-function", "rollout function", "rollout"),
    SelectionFlag("generate_function", "generate_functions", "--generate-function", "generate function", "rollout"),
    SelectionFlag("rm_type", "reward_models", "--rm-type", "reward model", "rollout"),
    SelectionFlag("dynamic_sampling_filter", "filters", "--dynamic-sampling-filter", "dynamic-sampling filter",
                  "rollout", stage="dynamic_sampling"),
    SelectionFlag("buffer_filter", "filters", "--buffer-filter", "buffer filter", "rollout", stage="buffer"),
    SelectionFlag("rollout_sample_filter", "filters", "--rollout-sample-filter", "sample filter", "rollout",
                  stage="sample"),
    SelectionFlag("rollout_engine", "engines", "--rollout-engine", "rollout engine", "engine"),
    SelectionFlag("advantage_estimator", "loss_estimators", "--advantage-estimator", "loss estimator", "both"),
    SelectionFlag("train_backend", "train_backends", "--train-backend", "train backend", "train"),
    SelectionFlag("model_spec", "model_specs", "--model-spec", "model spec", "both"),
)

_BY_DEST = {entry.dest: entry for entry in SELECTION_FLAGS}

ALWAYS_ON_LOGGERS = ("stdout", "jsonl")


@dataclass
class Selection:
    """What the run will use: ``{label: (name, spec, provenance) | None}`` plus notes for the plan."""

    components: dict[str, tuple[str, Any, Any] | None]
    notes: dict[str, str]
    loggers: list[tuple[str, Any]]


def _needed(entry: SelectionFlag, args: argparse.Namespace) -> bool:
    if entry.side == "rollout":
        return not args.load_debug_rollout_data
    if entry.side == "engine":
        return not args.debug_train_only
    if entry.side == "train":
        return not args.debug_rollout_only
    return True


def _lookup(pm: Any, entry: SelectionFlag, name: str) -> tuple[str, Any, Any]:
    try:
        spec = pm.get(entry.kind, name, flag=entry.flag)
    except ConfigError:
        raise
    except (PluginError, LookupError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    if entry.stage is not None and getattr(spec, "stage", entry.stage) != entry.stage:
        raise ConfigError(f"{entry.flag} {name!r} is a {spec.stage!r} filter, not a {entry.stage!r} filter; "
                          f"use it with the flag of its stage")
    return name, spec, pm.provenance(entry.kind, name)


def resolve_selections(args: argparse.Namespace, pm: Any) -> Selection:
    """Check every selection flag against the registries and fill the derived choices in ``args``."""
    try:
        pm.registries()  # two plugins giving one name is reported here, naming both
    except PluginError as exc:
        raise ConfigError(str(exc)) from exc
    components: dict[str, tuple[str, Any, Any] | None] = {}
    notes: dict[str, str] = {}
    for entry in SELECTION_FLAGS:
        if not _needed(entry, args):
            components[entry.label] = None
            notes[entry.label] = "not used in this mode"
            continue
        if entry.dest == "rollout_engine":
            name, note = _choose_engine(args, pm)
            notes[entry.label] = note
        elif entry.dest == "model_spec":
            name, note = _choose_model_spec(args, pm)
            notes[entry.label] = note
        else:
            name = getattr(args, entry.dest)
        if name is None:
            components[entry.label] = None
            continue
        components[entry.label] = _lookup(pm, entry, name)
    estimator = components.get("loss estimator")
    if estimator is not None:
        _apply_estimator_needs(args, estimator[1])
    loggers = _resolve_loggers(args, pm)
    return Selection(components, notes, loggers)


def _choose_engine(args: argparse.Namespace, pm: Any) -> tuple[str, str]:
    engines = pm.registry("engines")
    requested = args.rollout_engine
    if requested != "auto":
        spec = _lookup(pm, _BY_DEST["rollout_engine"], requested)[1]
        reason = spec.available()
        if reason:
            others = [n for n in engines.names() if n != requested]
            raise ConfigError(f"--rollout-engine {requested} cannot run here: {reason}"
                              + (f". Available engines: {', '.join(others)} (or auto)" if others else ""))
        return requested, "selected with --rollout-engine"
    sglang_reason = "no plugin provides it"
    if "sglang" in engines:
        sglang_reason = engines.get("sglang").available() or ""
        if not sglang_reason:
            args.rollout_engine = "sglang"
            return "sglang", "auto, because sglang can run here"
    if "embedded" in engines:
        args.rollout_engine = "embedded"
        return "embedded", f"auto, because sglang cannot run here: {sglang_reason}"
    raise ConfigError(
        f"--rollout-engine auto: neither the sglang engine (sglang: {sglang_reason}) nor the embedded engine is "
        f"available; registered engines: {', '.join(engines.names()) or 'none'}"
    )


def read_hf_config(path: str | None) -> dict[str, Any] | None:
    """The checkpoint's config.json as a dict (json only: no transformers import on the CLI path)."""
    if not path:
        return None
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _choose_model_spec(args: argparse.Namespace, pm: Any) -> tuple[str | None, str]:
    if args.model_spec:
        return args.model_spec, "selected with --model-spec"
    hf_config = read_hf_config(args.hf_checkpoint)
    if hf_config is None:
        return None, "no checkpoint config"
    matches = [spec.name for spec in pm.registry("model_specs") if spec.matches(hf_config)]
    described = f"architectures {hf_config.get('architectures')}, model_type {hf_config.get('model_type')!r}"
    if len(matches) > 1:
        raise ConfigError(f"--hf-checkpoint {args.hf_checkpoint} ({described}) matches several model specs: "
                          f"{', '.join(matches)}; choose one with --model-spec")
    if matches:
        args.model_spec = matches[0]
        return matches[0], f"matched {described}"
    if args.train_backend == "megatron" and not args.debug_rollout_only and not args.spec:
        raise ConfigError(
            f"no model spec matches --hf-checkpoint {args.hf_checkpoint} ({described}); the megatron backend "
            "needs one: install a plugin that provides it (e.g. pip install miles-models-qwen), or pass "
            "--model-spec NAME or --spec MODULE FN"
        )
    return None, f"none matches {described} (the fsdp backend loads it with transformers)"


def _apply_estimator_needs(args: argparse.Namespace, estimator: Any) -> None:
    args.use_critic = bool(getattr(estimator, "needs_critic", False))
    if args.use_critic:
        if args.kl_coef != 0:
            raise ConfigError(
                f"--advantage-estimator {args.advantage_estimator} trains a critic, which never sees the reference "
                "log-probs, so --kl-coef must be 0; use --use-kl-loss --kl-loss-coef instead"
            )
        if args.critic_lr is None:
            args.critic_lr = args.lr
        if args.critic_lr_warmup_iters is None:
            args.critic_lr_warmup_iters = args.lr_warmup_iters
        if args.critic_load is None:
            args.critic_load = args.load
        if args.critic_save is None and args.save:
            args.critic_save = args.save.rstrip("/") + "_critic"
    if getattr(estimator, "needs_teacher", False) and not args.opd_teacher_url:
        raise ConfigError(
            f"--advantage-estimator {args.advantage_estimator} distils from a teacher: pass --opd-teacher-url URL "
            "(an SGLang-compatible server of the teacher model)"
        )


def _resolve_loggers(args: argparse.Namespace, pm: Any) -> list[tuple[str, Any]]:
    registry = pm.registry("loggers")
    for name in args.logger:
        _lookup(pm, SelectionFlag("logger", "loggers", "--logger", "logger", "both"), name)
    for flag, wanted, name in (("--use-wandb", args.use_wandb, "wandb"),
                               ("--tensorboard-dir", args.tensorboard_dir, "tensorboard")):
        if wanted and name not in registry:
            raise ConfigError(f"{flag} needs the {name!r} logger, which no loaded plugin provides "
                              f"(available loggers: {', '.join(registry.names()) or 'none'})")
    return [(name, registry.provenance(name)) for name in active_loggers(args, pm)]


def active_loggers(args: argparse.Namespace, pm: Any) -> list[str]:
    """The loggers a run writes to: stdout and jsonl, each ``--logger``, and those their own flags enable."""
    registry = pm.registry("loggers")
    names: list[str] = [n for n in ALWAYS_ON_LOGGERS if n in registry]
    for spec in registry:
        enabled_by = getattr(spec, "enabled_by", None)
        if spec.name not in names and (spec.name in args.logger or (enabled_by is not None and enabled_by(args))):
            names.append(spec.name)
    return names
