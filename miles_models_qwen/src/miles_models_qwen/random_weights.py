"""Write random-init HF weights as safetensors shards, one tensor at a time.

No model object is built: each parameter of the inventory (``hf_parameters``) is drawn as HF's
``_init_weights`` would (normal(0, initializer_range) for weights, ones for norms, zeros for biases),
converted to the target dtype and written, shard by shard. Memory stays at one shard plus one float32
tensor, so even the 30B-A3B shape can be written on a small machine (given the disk).

Each tensor has its own generator, seeded from the run seed and the tensor's name: the same seed gives
the same bytes, and a tensor's values do not depend on which other tensors exist or their order.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from miles_models_qwen.architecture import QwenArchitecture
from miles_models_qwen.hf_parameters import HFParameter, iter_hf_parameters

if TYPE_CHECKING:
    import torch

__all__ = ["write_random_weights", "DEFAULT_MAX_SHARD_BYTES"]

DEFAULT_MAX_SHARD_BYTES = 2 * 1024**3
_SINGLE_FILE = "model.safetensors"
_INDEX_FILE = "model.safetensors.index.json"


def _tensor(param: HFParameter, seed: int, std: float, dtype: torch.dtype) -> torch.Tensor:
    import torch

    if param.init == "ones":
        return torch.ones(param.shape, dtype=dtype)
    if param.init == "zeros":
        return torch.zeros(param.shape, dtype=dtype)
    generator = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(param.name.encode())) % 2**63)
    return torch.empty(param.shape, dtype=torch.float32).normal_(0.0, std, generator=generator).to(dtype)


def _plan_shards(params: list[HFParameter], bytes_per_value: int, max_shard_bytes: int) -> list[list[HFParameter]]:
    shards: list[list[HFParameter]] = [[]]
    size = 0
    for param in params:
        nbytes = param.numel * bytes_per_value
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(param)
        size += nbytes
    return shards


def write_random_weights(arch: QwenArchitecture, out_dir: str | Path, *, seed: int, dtype: torch.dtype,
                         max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> list[Path]:
    """Write the weights of ``arch`` into ``out_dir`` (one file, or shards plus an index) and return the files."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = list(iter_hf_parameters(arch))
    bytes_per_value = torch.empty((), dtype=dtype).element_size()
    shards = _plan_shards(params, bytes_per_value, max_shard_bytes)
    files: list[Path] = []
    weight_map: dict[str, str] = {}
    for number, shard in enumerate(shards, start=1):
        filename = _SINGLE_FILE if len(shards) == 1 else f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        tensors = {param.name: _tensor(param, seed, arch.initializer_range, dtype) for param in shard}
        save_file(tensors, str(out / filename), metadata={"format": "pt"})
        del tensors
        files.append(out / filename)
        weight_map.update({param.name: filename for param in shard})
    if len(shards) > 1:
        total_size = sum(param.numel for param in params) * bytes_per_value
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        (out / _INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        files.append(out / _INDEX_FILE)
    return files
