"""Put an FSDP2 model back in its sharded state before reading its parameters.

FSDP2 keeps the root module's parameters unsharded after a forward pass without backward (the
log-prob passes): ``named_parameters()`` then yields plain full tensors for those and ``DTensor``
shards for the rest. Code that walks parameters collectively (weight sync, HF export, checkpoints,
copying the actor into the reference) calls :func:`reshard` first so every rank sees shards.
"""

from __future__ import annotations

from torch import nn

__all__ = ["reshard"]


def reshard(model: nn.Module) -> None:
    """Reshard every FSDP2 unit of ``model`` (a no-op for modules that are not FSDP2-sharded)."""
    for module in model.modules():
        if hasattr(module, "reshard") and type(module).__name__.startswith("FSDP"):
            module.reshard()
