"""Real SGLang servers as a rollout engine: the ``python -m sglang.launch_server`` command line.

Miles sets the model, address, tensor-parallel size, seed, warm-up and memory-saver flags; every other
SGLang flag comes from the ``--sglang-*`` passthrough (``args.sglang_server_args``:
``--sglang-mem-fraction-static 0.8`` → ``--mem-fraction-static 0.8``), unchanged, so SGLang itself
validates them.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

#: Flags this module sets itself; the same names in the passthrough are ignored (ours win).
OWN_FLAGS = ("model-path", "host", "port", "tp-size", "random-seed", "trust-remote-code", "skip-server-warmup",
             "enable-memory-saver")


def sglang_unavailable_reason() -> str | None:
    """``None`` when SGLang can serve here, else why not (no ``sglang`` module, no CUDA GPU)."""
    if importlib.util.find_spec("sglang") is None:
        return ("the 'sglang' package is not installed in this environment (pip install 'sglang[all]' on a "
                "machine with NVIDIA GPUs); use --rollout-engine embedded to run without it")
    import torch

    if not torch.cuda.is_available():
        return ("SGLang serves on NVIDIA GPUs and torch.cuda.is_available() is False here; "
                "use --rollout-engine embedded on CPU")
    return None


def engine_seed(args: argparse.Namespace, engine_index: int) -> int:
    """Each engine's ``--random-seed``: ``--rollout-seed`` (else ``--seed``) plus the engine index."""
    base = getattr(args, "rollout_seed", None)
    if base is None:
        base = getattr(args, "seed", 0) or 0
    return int(base) + int(engine_index)


def passthrough_flags(server_args: dict[str, Any] | None, skip: tuple[str, ...] = OWN_FLAGS) -> list[str]:
    """``{"mem-fraction-static": "0.8", "enable-dp-attention": True, "cuda-graph-bs": ["1", "2"]}`` →
    ``["--mem-fraction-static", "0.8", "--enable-dp-attention", "--cuda-graph-bs", "1", "2"]``."""
    flags: list[str] = []
    for name, value in (server_args or {}).items():
        if name in skip or value is False or value is None:
            continue
        flags.append(f"--{name}")
        if value is True:
            continue
        if isinstance(value, (list, tuple)):
            flags.extend(str(v) for v in value)
        else:
            flags.append(str(value))
    return flags


def sglang_command(args: argparse.Namespace, host: str, port: int, engine_index: int) -> list[str]:
    """``python -m sglang.launch_server`` for engine ``engine_index`` of this run."""
    if not getattr(args, "hf_checkpoint", None):
        raise ValueError("--hf-checkpoint is required to start SGLang engines")
    command = [
        sys.executable, "-m", "sglang.launch_server",
        "--model-path", str(args.hf_checkpoint),
        "--host", host,
        "--port", str(port),
        "--tp-size", str(getattr(args, "rollout_num_gpus_per_engine", 1) or 1),
        "--random-seed", str(engine_seed(args, engine_index)),
        "--trust-remote-code",
        "--skip-server-warmup",
    ]
    if getattr(args, "offload_rollout", False) or getattr(args, "colocate", False):
        command.append("--enable-memory-saver")  # /release_memory_occupation needs it
    return command + passthrough_flags(getattr(args, "sglang_server_args", None))
