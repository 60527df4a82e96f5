"""Built-in rollout engines (``--rollout-engine embedded|sglang``) and the ``miles engine`` command.

Both engines serve SGLang's HTTP API, so the router, the rollout code and the weight sync never know
which one they talk to. This module is an entry point: it imports nothing heavy.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterable

from miles_core import hookimpl
from miles_core.plugins.types import EngineSpec


def embedded_command(args: argparse.Namespace, host: str, port: int, engine_index: int) -> list[str]:
    """The embedded engine server for engine ``engine_index`` of a run."""
    from miles_core.engines.local import embedded_engine_command
    from miles_core.engines.sglang_server import engine_seed

    if not getattr(args, "hf_checkpoint", None):
        raise ValueError("--hf-checkpoint is required to start embedded engines")
    return embedded_engine_command(
        args.hf_checkpoint, host=host, port=port,
        device=getattr(args, "embedded_engine_device", "auto"),
        dtype=getattr(args, "embedded_engine_dtype", "auto"),
        random_seed=engine_seed(args, engine_index),
        max_batch_size=getattr(args, "embedded_engine_max_batch_size", 64),
        extra_args=["--max-prefill-tokens", str(getattr(args, "embedded_engine_max_prefill_tokens", 16384))],
    )


def embedded_unavailable_reason() -> str | None:
    missing = [name for name in ("torch", "transformers", "fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    return f"missing package(s): {', '.join(missing)}" if missing else None


def sglang_command(args: argparse.Namespace, host: str, port: int, engine_index: int) -> list[str]:
    from miles_core.engines.sglang_server import sglang_command as build

    return build(args, host, port, engine_index)


def sglang_unavailable_reason() -> str | None:
    from miles_core.engines.sglang_server import sglang_unavailable_reason as reason

    return reason()


@hookimpl
def miles_engines() -> Iterable[EngineSpec]:
    yield EngineSpec(
        name="embedded",
        description="transformers model behind SGLang's HTTP API, continuous batching (CPU or GPU)",
        command=embedded_command,
        available=embedded_unavailable_reason,
    )
    yield EngineSpec(
        name="sglang",
        description="SGLang servers (python -m sglang.launch_server, --sglang-* passed through)",
        command=sglang_command,
        available=sglang_unavailable_reason,
    )


@hookimpl
def miles_add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedded engine", "Used with --rollout-engine embedded.")
    group.add_argument("--embedded-engine-device", default="auto",
                       help="auto (CUDA when visible, else CPU), cpu, cuda.")
    group.add_argument("--embedded-engine-dtype", default="auto",
                       help="auto (float32 on CPU, the checkpoint's half precision on GPU), float32, bfloat16, float16.")
    group.add_argument("--embedded-engine-max-batch-size", type=int, default=64,
                       help="Most sequences one embedded engine decodes together.")
    group.add_argument("--embedded-engine-max-prefill-tokens", type=int, default=16384,
                       help="Most padded prompt tokens one embedded engine prefills in one forward pass.")


@hookimpl
def miles_register_commands(subparsers) -> None:
    from miles_core.engines.embedded.cli import add_engine_arguments

    parser = subparsers.add_parser("engine", help="Serve a model behind SGLang's HTTP API (the embedded engine)",
                                   description="Serve a transformers causal LM behind SGLang's HTTP API.")
    add_engine_arguments(parser)
    parser.set_defaults(func=_run_engine)


def _run_engine(args: argparse.Namespace) -> int:
    from miles_core.engines.embedded.cli import run

    return run(args)
