"""Tiny checkpoints of every Qwen family, shared by the model tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from qwen_tiny import TINY_ARCHS


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``{arch: path}`` of the ``tiny`` preset of each family (seed 0, float32, char tokenizer)."""
    from miles_models_qwen.presets import create_checkpoint

    root = tmp_path_factory.mktemp("tiny-qwen")
    return {arch: create_checkpoint(arch, "tiny", root / arch, seed=0) for arch in TINY_ARCHS}


@pytest.fixture(scope="session")
def perturbed_checkpoints(tiny_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """The tiny checkpoints with every tensor perturbed, so norms are not all ones and biases not all zeros.

    A mapping that swapped q_norm and k_norm, or dropped a bias, would still pass a logits comparison on
    the freshly initialised weights; on these it cannot.
    """
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("perturbed-qwen")
    out: dict[str, Path] = {}
    generator = torch.Generator().manual_seed(1234)
    for arch, path in tiny_checkpoints.items():
        target = root / arch
        target.mkdir()
        for item in path.iterdir():
            if item.name != "model.safetensors":
                (target / item.name).write_bytes(item.read_bytes())
        tensors = load_file(str(path / "model.safetensors"))
        perturbed = {
            name: tensor + 0.1 * torch.randn(tensor.shape, generator=generator) for name, tensor in sorted(tensors.items())
        }
        save_file(perturbed, str(target / "model.safetensors"), metadata={"format": "pt"})
        out[arch] = target
    return out
