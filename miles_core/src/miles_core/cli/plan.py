"""The resolved plan that ``miles train`` prints before anything starts (and all of ``--dry-run``).

It answers the questions a user has before spending GPU hours: which package provides each component
I selected, what batch sizes were derived, and which processes will start where.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from miles_core.config.batch_knobs import KNOBS
from miles_core.config.selection import Selection

__all__ = ["format_plan", "local_gpu_count"]


def local_gpu_count() -> int:
    """NVIDIA GPUs visible on this machine, without importing torch (driver entries, CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        return sum(1 for _ in gpus.iterdir())
    except OSError:
        return 0


def _components(selection: Selection) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    for label, chosen in selection.components.items():
        note = selection.notes.get(label, "")
        if chosen is None:
            rows.append((label, "-", note or "not set"))
            continue
        name, _spec, provenance = chosen
        rows.append((label, name, provenance.describe() + (f"; {note}" if note else "")))
    if selection.loggers:
        by_source: dict[str, list[str]] = {}
        for name, provenance in selection.loggers:
            by_source.setdefault(provenance.describe(), []).append(name)
        for source, names in by_source.items():
            rows.append(("loggers", ", ".join(names), source))
    width = max(len(r[0]) for r in rows)
    name_width = max(len(r[1]) for r in rows)
    return [f"  {label:<{width}}  {name:<{name_width}}  {source}" for label, name, source in rows]


def _batch(args: argparse.Namespace) -> list[str]:
    source = getattr(args, "batch_knobs", {})
    rbs, n, gbs, k = (getattr(args, knob) for knob in KNOBS)
    lines = [
        f"  {rbs} prompts × {n} samples = {rbs * n} samples per rollout = {gbs} per step × {k} steps",
        "  " + ", ".join(f"{knob} {getattr(args, knob)} ({source.get(knob, 'passed')})" for knob in KNOBS),
    ]
    if args.over_sampling_batch_size != rbs:
        lines.append(f"  over-sampling: {args.over_sampling_batch_size} prompts submitted per batch")
    if args.num_rollout is not None:
        length = f"{args.num_rollout} rollouts (--num-rollout)"
    else:
        length = f"derived from the dataset size at start ({args.num_epoch or 1} epoch(s))"
    if args.debug_exit_after_rollout:
        length += f", stopping after {args.debug_exit_after_rollout} (--debug-exit-after-rollout)"
    lines.append(f"  run length: {length}")
    return lines


def _layout(args: argparse.Namespace) -> list[str]:
    gpus = local_gpu_count() if not args.ray_address else None
    if args.ray_address:
        lines = [f"  Ray: join the cluster at {args.ray_address}"]
        devices = "GPUs of that cluster"
    else:
        lines = ["  Ray: a local cluster on this machine (started by miles train, stopped at the end)"]
        devices = f"{gpus} GPU(s)" if gpus else "no GPU found: every 'GPU' below is a CPU bundle"
    lines.append(f"  devices: {devices}")
    world = args.actor_num_nodes * args.actor_num_gpus_per_node
    if args.debug_rollout_only:
        lines.append("  actor: none (--debug-rollout-only)")
    else:
        model_parallel = (args.tensor_model_parallel_size * args.pipeline_model_parallel_size
                          * args.context_parallel_size)
        sizes = (f"tp {args.tensor_model_parallel_size}, pp {args.pipeline_model_parallel_size}, "
                 f"cp {args.context_parallel_size}, dp {world // model_parallel}")
        lines.append(f"  actor: {args.actor_num_nodes} node(s) × {args.actor_num_gpus_per_node} = {world} rank(s), "
                     f"{args.train_backend} backend ({sizes})")
        if getattr(args, "use_critic", False):
            lines.append(f"  critic: {world} rank(s) alongside the actor (ppo)")
    if args.debug_train_only:
        lines.append("  rollout: no engines, no router (--debug-train-only)"
                     + (f"; rollouts replayed from {args.load_debug_rollout_data}" if args.load_debug_rollout_data else ""))
    else:
        engines, per_engine = _engine_count(args, gpus)
        lines.append(f"  rollout: {engines} {args.rollout_engine} engine(s) × {per_engine} GPU(s) each, "
                     f"up to {args.sglang_server_concurrency} concurrent requests per engine")
        if args.sglang_router_ip:
            lines.append(f"  router: external, at {args.sglang_router_ip}:{args.sglang_router_port}")
        else:
            lines.append("  router: Miles router (FastAPI) started on this machine")
        if args.sglang_server_args:
            flags = " ".join(f"--{k}" if v is True else f"--{k} {v if isinstance(v, str) else ' '.join(v)}"
                             for k, v in args.sglang_server_args.items())
            lines.append(f"  engine flags: {flags}")
    lines.append(f"  colocate: {'yes' if args.colocate else 'no'}, offload train: {'yes' if args.offload_train else 'no'}"
                 f", offload rollout: {'yes' if args.offload_rollout else 'no'}")
    if not (args.debug_train_only or args.debug_rollout_only):
        lines.append(f"  weight sync: every {args.update_weights_interval} rollout(s), "
                     f"--update-weight-transfer-mode {args.update_weight_transfer_mode}")
    return lines


def _engine_count(args: argparse.Namespace, gpus: int | None) -> tuple[int, int]:
    try:
        from miles_core.ray.placement import compute_layout
    except ImportError:
        compute_layout = None
    if compute_layout is not None:
        layout = compute_layout(args, float(gpus if gpus is not None else 1))
        return layout.num_engines, layout.gpus_per_engine
    rollout_gpus = args.rollout_num_gpus or args.rollout_num_gpus_per_engine
    return max(rollout_gpus // args.rollout_num_gpus_per_engine, 1), args.rollout_num_gpus_per_engine


def _outputs(args: argparse.Namespace) -> list[str]:
    lines = [f"  run directory: {args.run_dir} (metrics.jsonl)"]
    if args.save:
        cadence = f"every {args.save_interval} rollout(s) and at the end" if args.save_interval else "at the end"
        lines.append(f"  checkpoints: {args.save}, {cadence}" + (f"; HF export to {args.save_hf}" if args.save_hf else ""))
    else:
        lines.append("  checkpoints: none (pass --save DIR)")
    if args.load:
        lines.append(f"  resume from: {args.load}")
    if args.eval_datasets:
        names = ", ".join(name for name, _ in args.eval_datasets)
        cadence = f"every {args.eval_interval} rollout(s)" if args.eval_interval else "before training only"
        lines.append(f"  eval: {names}, {cadence}")
    return lines


def format_plan(args: argparse.Namespace, selection: Selection, pm: Any = None) -> str:
    """The plan as printed by ``miles train`` (plain text, one section per question)."""
    from miles_core import __version__

    loop = ("async loop: generation of rollout k+1 overlaps training on rollout k "
            f"(max weight staleness {args.max_weight_staleness})" if args.async_mode else "sync loop")
    sections = [
        f"Miles {__version__}: plan of this run ({loop})",
        "Components (selected by flag, provided by):",
        *_components(selection),
        "Batch (rollout_batch_size × n_samples_per_prompt = global_batch_size × num_steps_per_rollout):",
        *_batch(args),
        "Processes:",
        *_layout(args),
        "Outputs:",
        *_outputs(args),
    ]
    if pm is not None and getattr(pm.selection, "describe", None):
        sections.insert(1, f"Plugins: {pm.selection.describe()}")
    return "\n".join(sections)
