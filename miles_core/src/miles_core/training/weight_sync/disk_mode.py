"""``disk`` mode: write the weights as an HF directory, then ``/update_weights_from_disk``.

The portable fallback: it works with any engine that can read the path (same machine, or a shared
filesystem for remote engines). Each sync writes a fresh directory named after the weight version and
removes the previous one once every engine has loaded the new one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from miles_core.training.weight_sync.engine_http import EngineCaller
from miles_core.training.weight_sync.hf_directory import write_hf_directory
from miles_core.training.weight_sync.hf_tensors import NamedTensor, bucket_bytes

__all__ = ["send_via_disk"]


def send_via_disk(
    caller: EngineCaller,
    buckets: Iterable[list[NamedTensor]],
    *,
    weight_version: str,
    root: str | Path,
    source_checkpoint: str | Path,
    previous: Path | None = None,
) -> tuple[int, Path]:
    """Write ``buckets`` under ``root/v<version>``, have every engine load it; returns (bytes, directory)."""
    sent = 0

    def counted():
        nonlocal sent
        for bucket in buckets:
            sent += bucket_bytes(bucket)
            yield bucket

    safe_version = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(weight_version))
    target = write_hf_directory(counted(), Path(root) / f"v{safe_version}", source_checkpoint=source_checkpoint)
    caller.post_all("/update_weights_from_disk",
                    {"model_path": str(target.resolve()), "weight_version": weight_version})
    if previous is not None and previous != target and previous.exists():
        shutil.rmtree(previous, ignore_errors=True)
    return sent, target
