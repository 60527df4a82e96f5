"""Test helpers shared by the Qwen model tests (imported by module name: pytest's rootdir-relative path mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

TINY_ARCHS = ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe")


def read_safetensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:  # noqa: F821
    """A checkpoint's tensors in file order, read one at a time (as a converter of a large checkpoint would)."""
    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as handle:
        for name in handle.keys():
            yield name, handle.get_tensor(name)
