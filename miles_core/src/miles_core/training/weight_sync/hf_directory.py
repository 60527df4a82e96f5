"""Write an HF model directory (safetensors shards + index + config and tokenizer files).

Used three ways: ``--save-hf`` exports, ``export_hf(path)``, and the ``disk`` weight-sync mode (engines
load the directory with ``/update_weights_from_disk``). The result loads with ``from_pretrained`` and
with SGLang: the weights are the actor's, the non-weight files (``config.json``, tokenizer,
chat template, generation config) are copied from ``--hf-checkpoint``.

Buckets arrive one at a time and each is written as one shard, so memory stays at one bucket.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from miles_core.training.weight_sync.hf_tensors import NamedTensor, bucket_bytes

__all__ = ["WEIGHT_SUFFIXES", "copy_non_weight_files", "write_hf_directory"]

#: Files of a checkpoint directory that hold weights (not copied: the actor's weights replace them).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


def copy_non_weight_files(source: str | Path, target: str | Path) -> None:
    """Copy config, tokenizer and other small files of ``source`` (no weights, no weight index)."""
    source, target = Path(source), Path(target)
    for path in source.iterdir():
        if not path.is_file() or path.name.endswith(WEIGHT_SUFFIXES) or path.name.endswith(".index.json"):
            continue
        shutil.copy2(path, target / path.name)


def write_hf_directory(
    buckets: Iterable[list[NamedTensor]], target: str | Path, *, source_checkpoint: str | Path
) -> Path:
    """Write every bucket as a safetensors shard under ``target`` and finish the directory.

    One shard is named ``model.safetensors``; several are ``model-0000i-of-0000n.safetensors`` with a
    ``model.safetensors.index.json`` (HF's sharded layout). Files are written under temporary names
    and renamed at the end, so a reader never sees a half-written directory as complete.
    """
    from safetensors.torch import save_file

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for stale in list(target.glob("model*.safetensors")) + list(target.glob("model.safetensors.index.json")):
        stale.unlink()
    parts: list[tuple[Path, list[str], int]] = []
    for bucket in buckets:
        part = target / f".part-{len(parts):05d}.safetensors"
        save_file({name: tensor.cpu().contiguous() for name, tensor in bucket}, str(part), metadata={"format": "pt"})
        parts.append((part, [name for name, _ in bucket], bucket_bytes(bucket)))
    if not parts:
        raise ValueError("no tensors to write")
    copy_non_weight_files(source_checkpoint, target)
    if len(parts) == 1:
        parts[0][0].replace(target / "model.safetensors")
        return target
    weight_map: dict[str, str] = {}
    total = 0
    for i, (part, names, nbytes) in enumerate(parts):
        final = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        part.replace(target / final)
        weight_map.update({name: final for name in names})
        total += nbytes
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (target / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return target
