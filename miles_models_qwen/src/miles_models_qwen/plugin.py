"""Entry point of miles-models-qwen: the hook implementations it registers with Miles.

- ``miles_model_specs``: ``qwen2``, ``qwen3``, ``qwen3_moe`` and ``qwen2_moe`` (matched by the HF
  ``architectures``/``model_type`` of a checkpoint, or chosen with ``--model-spec NAME``).
- ``miles_register_commands``: ``miles models create`` / ``miles models list``.

Nothing heavy is imported here (no torch, transformers or megatron), so ``miles --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miles_core import ModelSpec, hookimpl


@hookimpl
def miles_model_specs() -> Iterable[ModelSpec]:
    from miles_models_qwen.specs import model_specs

    yield from model_specs()


@hookimpl
def miles_register_commands(subparsers: Any) -> None:
    from miles_models_qwen.commands import add_models_command

    add_models_command(subparsers)
