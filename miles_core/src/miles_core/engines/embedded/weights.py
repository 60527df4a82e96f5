"""Changing the embedded engine's weights in place: from a checkpoint on disk, from safetensors buckets
sent over HTTP, or from a torch.distributed broadcast; and releasing/resuming their memory.

Every update is validated in full (names known to the model, shapes equal) before any tensor is
copied, so a bad update leaves the old weights untouched and answers ``success: false`` with the reason.
All functions here run in the scheduler thread (via ``Scheduler.call``), between two decode steps.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from miles_core.engines.weight_group import destroy_weights_update_group, init_weights_update_group, parse_dtype

logger = logging.getLogger(__name__)

MEMORY_TAGS = ("weights", "kv_cache", "cuda_graph")


class WeightUpdateError(ValueError):
    """An update that was refused; nothing was changed."""


def load_named_tensors(model: torch.nn.Module, named: Iterable[tuple[str, torch.Tensor]]) -> int:
    """Copy HF-named tensors into ``model`` after checking every name and shape; return how many."""
    targets = model.state_dict(keep_vars=True)  # includes tied aliases such as lm_head.weight
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []
    unknown: list[str] = []
    mismatched: list[str] = []
    for name, tensor in named:
        target = targets.get(name)
        if target is None:
            unknown.append(name)
        elif tuple(target.shape) != tuple(tensor.shape):
            mismatched.append(f"{name}: model {tuple(target.shape)}, update {tuple(tensor.shape)}")
        else:
            pending.append((target, tensor))
    if unknown or mismatched:
        problems = []
        if unknown:
            problems.append(f"unknown parameter name(s) {', '.join(unknown[:8])}" + (" …" if len(unknown) > 8 else ""))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched[:8]))
        raise WeightUpdateError("; ".join(problems) + ". No weight was changed.")
    with torch.no_grad():
        for target, tensor in pending:
            target.data.copy_(tensor.to(device=target.device, dtype=target.dtype))
    return len(pending)


def read_checkpoint(model_path: str | Path) -> Iterable[tuple[str, torch.Tensor]]:
    """The tensors of an HF checkpoint directory (safetensors, else PyTorch ``.bin`` files)."""
    path = Path(model_path)
    if not path.is_dir():
        raise WeightUpdateError(f"model_path {str(path)!r} is not a directory")
    files = sorted(path.glob("*.safetensors"))
    if files:
        from safetensors import safe_open

        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    yield key, handle.get_tensor(key)
        return
    files = sorted(path.glob("*.bin"))
    if not files:
        raise WeightUpdateError(f"no *.safetensors or *.bin weight files in {str(path)!r}")
    for file in files:
        yield from torch.load(file, map_location="cpu", weights_only=True).items()


def decode_safetensors_buckets(serialized: list[str]) -> list[tuple[str, torch.Tensor]]:
    """Each string is the base64 of a safetensors blob (a bucket of named tensors)."""
    from safetensors.torch import load

    named: list[tuple[str, torch.Tensor]] = []
    for i, blob in enumerate(serialized):
        try:
            named.extend(load(base64.b64decode(blob)).items())
        except Exception as exc:
            raise WeightUpdateError(f"serialized_named_tensors[{i}] is not a base64 safetensors blob: {exc}") from exc
    return named


@dataclass
class WeightGroups:
    """The torch.distributed groups this engine joined with ``/init_weights_update_group``."""

    groups: dict[str, tuple[Any, str]] = field(default_factory=dict)  # name -> (group, backend)

    def init(self, master_address: str, master_port: int, rank_offset: int, world_size: int, group_name: str,
             backend: str, timeout: float = 300.0) -> None:
        if group_name in self.groups:
            raise WeightUpdateError(f"weight update group {group_name!r} already exists; destroy it first")
        group = init_weights_update_group(master_address, master_port, rank_offset, world_size, group_name,
                                          backend, timeout)
        self.groups[group_name] = (group, backend)

    def receive(self, group_name: str, names: list[str], dtypes: list[str], shapes: list[list[int]],
                device: torch.device) -> list[tuple[str, torch.Tensor]]:
        """Receive one broadcast per name from rank 0, in order."""
        import torch.distributed as dist

        if group_name not in self.groups:
            raise WeightUpdateError(f"no weight update group {group_name!r}; call /init_weights_update_group first")
        if not len(names) == len(dtypes) == len(shapes):
            raise WeightUpdateError(f"names, dtypes and shapes differ in length ({len(names)}, {len(dtypes)}, "
                                    f"{len(shapes)})")
        group, backend = self.groups[group_name]
        receive_device = device if backend == "nccl" else torch.device("cpu")
        received = []
        for name, dtype, shape in zip(names, dtypes, shapes, strict=True):
            tensor = torch.empty(tuple(shape), dtype=parse_dtype(dtype), device=receive_device)
            dist.broadcast(tensor, src=0, group=group)
            received.append((name, tensor))
        return received

    def destroy(self, group_name: str) -> None:
        if group_name not in self.groups:
            raise WeightUpdateError(f"no weight update group {group_name!r}")
        group, _ = self.groups.pop(group_name)
        destroy_weights_update_group(group)


@dataclass
class MemoryState:
    """What ``/release_memory_occupation`` released (SGLang's tags ``weights``, ``kv_cache``, ``cuda_graph``).

    On a GPU, releasing ``weights`` moves them to host memory and frees the device memory; on the CPU
    there is no device memory to give back, so only the state changes. Either way, generating while
    ``weights`` or ``kv_cache`` is released is refused (HTTP 503) until ``/resume_memory_occupation``.
    """

    released: set[str] = field(default_factory=set)

    def blocking_generation(self) -> list[str]:
        return sorted(self.released & {"weights", "kv_cache"})

    def release(self, model: torch.nn.Module, device: torch.device, tags: list[str] | None) -> list[str]:
        tags = _check_tags(tags)
        if "weights" in tags and "weights" not in self.released and device.type == "cuda":
            model.to("cpu")
            torch.cuda.empty_cache()
        if "kv_cache" in tags and device.type == "cuda":
            torch.cuda.empty_cache()
        self.released.update(tags)
        return tags

    def resume(self, model: torch.nn.Module, device: torch.device, tags: list[str] | None) -> list[str]:
        tags = _check_tags(tags)
        if "weights" in tags and "weights" in self.released and device.type == "cuda":
            model.to(device)
        self.released.difference_update(tags)
        return tags


def _check_tags(tags: list[str] | None) -> list[str]:
    if tags is None:
        return list(MEMORY_TAGS)
    unknown = sorted(set(tags) - set(MEMORY_TAGS))
    if unknown:
        raise WeightUpdateError(f"unknown memory tag(s) {', '.join(unknown)}; SGLang's tags are {', '.join(MEMORY_TAGS)}")
    return list(tags)
