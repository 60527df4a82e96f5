"""``miles models create`` and ``miles models list``: local random-init Qwen checkpoints.

Registered through the ``miles_register_commands`` hook. Building the parsers imports nothing heavy;
torch, transformers and tokenizers are imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from miles_models_qwen.presets import PRESETS, get_preset, normalize_arch

__all__ = ["add_models_command", "run_create", "run_list", "format_count"]

_ARCH_CHOICES = [arch.replace("_", "-") for arch in PRESETS]


def add_models_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``models`` with its ``create`` and ``list`` subcommands to a ``miles`` subparsers object."""
    models = subparsers.add_parser(
        "models", help="create or list local Qwen checkpoints (random init, locally built tokenizer)",
        description="Random-init Qwen checkpoints for tests, demos and memory/throughput work; no model hub needed.",
    )
    models_sub = models.add_subparsers(dest="models_command", metavar="{create,list}")
    models_sub.required = True

    create = models_sub.add_parser("create", help="write a random-init HF checkpoint of a preset",
                                   description="Write a random-init HF checkpoint (safetensors, config, tokenizer).")
    create.add_argument("--arch", required=True, type=str.lower, choices=_ARCH_CHOICES + list(PRESETS),
                        metavar="{" + ",".join(_ARCH_CHOICES) + "}", help="model family")
    create.add_argument("--preset", required=True, help="preset name (see `miles models list`), e.g. tiny, 0.6b")
    create.add_argument("--out", required=True, type=Path, help="output directory")
    create.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes (0)")
    create.add_argument("--tokenizer", choices=["char", "bpe"], default=None,
                        help="character-level or byte-level BPE tokenizer (default: the preset's)")
    create.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                        help="weight dtype (default: the preset's)")
    create.add_argument("--force", action="store_true", help="write into a directory that is not empty")
    create.set_defaults(func=run_create)

    listing = models_sub.add_parser("list", help="show the presets with their parameter counts")
    listing.add_argument("--arch", type=str.lower, choices=_ARCH_CHOICES + list(PRESETS), default=None,
                         metavar="{" + ",".join(_ARCH_CHOICES) + "}", help="only this family")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)
    return models


def format_count(count: int) -> str:
    """``80704`` → ``80.7K``, ``596049920`` → ``596.0M``, ``30532122624`` → ``30.53B``."""
    if count >= 10**9:
        return f"{count / 10**9:.2f}B"
    if count >= 10**6:
        return f"{count / 10**6:.1f}M"
    if count >= 10**3:
        return f"{count / 10**3:.1f}K"
    return str(count)


def run_create(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    from miles_models_qwen.hf_parameters import count_parameters
    from miles_models_qwen.presets import create_checkpoint, preset_architecture

    try:
        preset = get_preset(args.arch, args.preset)
    except ValueError as exc:
        print(f"miles: error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"miles: error: {out} exists and is not empty; choose another --out or pass --force", file=sys.stderr)
        return 2
    total, _ = count_parameters(preset_architecture(preset.arch, preset.name, args.tokenizer))
    label = f"{preset.arch.replace('_', '-')}/{preset.name}"
    print(f"creating {label} ({format_count(total)} parameters) in {out} ...", file=stdout)
    started = time.perf_counter()
    create_checkpoint(preset.arch, preset.name, out, seed=args.seed, tokenizer=args.tokenizer, dtype=args.dtype)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({size / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s; load it with "
          f"AutoModelForCausalLM.from_pretrained({str(out)!r})", file=stdout)
    return 0


def _rows(arch_filter: str | None) -> list[dict[str, Any]]:
    from miles_models_qwen.hf_parameters import count_parameters
    from miles_models_qwen.presets import preset_architecture

    rows = []
    for family, presets in PRESETS.items():
        if arch_filter and normalize_arch(arch_filter) != family:
            continue
        for preset in presets.values():
            arch = preset_architecture(family, preset.name)
            total, active = count_parameters(arch)
            rows.append(dict(
                arch=family.replace("_", "-"), preset=preset.name, parameters=total, active_parameters=active,
                layers=arch.num_layers, hidden=arch.hidden_size,
                experts=f"{arch.num_experts_per_token}/{arch.num_experts}" if arch.num_experts else "-",
                vocab=arch.vocab_size, tokenizer=preset.tokenizer, dtype=preset.dtype, description=preset.description,
            ))
    return rows


def run_list(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    rows = _rows(getattr(args, "arch", None))
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2), file=stdout)
        return 0
    header = ["arch", "preset", "params", "active", "layers", "hidden", "experts", "vocab", "tokenizer", "dtype",
              "description"]
    table = [header] + [
        [r["arch"], r["preset"], format_count(r["parameters"]), format_count(r["active_parameters"]), str(r["layers"]),
         str(r["hidden"]), r["experts"], str(r["vocab"]), r["tokenizer"], r["dtype"], r["description"]]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        print("  ".join(cells) + "  " + line[-1], file=stdout)
    print("\nCreate one with: miles models create --arch qwen3 --preset tiny --out ./tiny-qwen3", file=stdout)
    return 0
