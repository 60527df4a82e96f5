"""Push the trainer's weights to every engine after a rollout, and prove they arrived.

The session around the transfer (Miles §10): ``/pause_generation`` → transfer (the last request sets
``weight_version`` and flushes the prefix cache) → ``/get_weight_version`` on every engine must equal
the new version (else an error naming the engine) → ``/continue_generation`` (always, even after an
error, so a failed sync never leaves engines paused).

``--update-weight-transfer-mode``:

- ``tensor``: in-memory buckets to ``/update_weights_from_tensor`` (colocated; embedded engine only);
- ``distributed``: broadcast through a group of trainer rank 0 and the engines (gloo on CPU, NCCL on GPU);
- ``disk``: an HF directory and ``/update_weights_from_disk`` (portable fallback);
- ``auto``: ``tensor`` when colocated with embedded engines, else ``distributed``; if the broadcast group
  cannot be formed, ``disk`` (with a warning) for this and later syncs.

Every train rank calls :meth:`WeightUpdater.update` (gathering FSDP shards is collective); rank 0 alone
talks to the engines, then tells the other ranks whether it worked, so all ranks raise the same error.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from miles_core.training.weight_sync.distributed_mode import send_distributed
from miles_core.training.weight_sync.disk_mode import send_via_disk
from miles_core.training.weight_sync.engine_http import EngineCaller, WeightSyncError
from miles_core.training.weight_sync.hf_tensors import NamedTensor, iter_buckets, iter_full_tensors
from miles_core.training.weight_sync.tensor_mode import SGLANG_TENSOR_MODE_ERROR, send_tensor_buckets

__all__ = ["TRANSFER_MODES", "engine_kind", "resolve_transfer_mode", "WeightUpdater"]

logger = logging.getLogger(__name__)

TRANSFER_MODES = ("auto", "tensor", "distributed", "disk")


def engine_kind(rollout_engine: str | None) -> str:
    """``"sglang"`` or ``"embedded"``: what serves the engine URLs (``--rollout-engine``; ``auto`` means
    SGLang where it is installed and a GPU is visible, as the engine selection does)."""
    if rollout_engine in ("sglang", "embedded"):
        return rollout_engine
    if rollout_engine not in (None, "auto"):
        return "sglang"  # a third-party engine plugin speaks SGLang's API
    has_sglang = importlib.util.find_spec("sglang") is not None
    return "sglang" if has_sglang and torch.cuda.is_available() else "embedded"


def resolve_transfer_mode(requested: str, *, colocate: bool, kind: str) -> str:
    """The concrete mode for ``--update-weight-transfer-mode requested``."""
    if requested not in TRANSFER_MODES:
        raise ValueError(f"--update-weight-transfer-mode {requested!r}: choose one of {', '.join(TRANSFER_MODES)}")
    if requested == "auto":
        return "tensor" if colocate and kind == "embedded" else "distributed"
    if requested == "tensor" and kind == "sglang":
        raise WeightSyncError(SGLANG_TENSOR_MODE_ERROR)
    return requested


class WeightUpdater:
    """Sends one model's weights to engines; one instance per train rank, reused across syncs."""

    def __init__(
        self,
        model: nn.Module,
        *,
        mode: str,
        kind: str,
        colocate: bool,
        buffer_bytes: int,
        hf_checkpoint: str,
        dtype: torch.dtype,
        device: torch.device,
        master_address: str,
        ranks_per_engine: int = 1,
        disk_root: str | Path | None = None,
    ) -> None:
        self.model = model
        self.requested_mode = mode
        self.kind = kind
        self.mode = resolve_transfer_mode(mode, colocate=colocate, kind=kind)
        self.buffer_bytes = int(buffer_bytes)
        self.hf_checkpoint = hf_checkpoint
        self.dtype = dtype
        self.device = device
        self.master_address = master_address
        self.ranks_per_engine = ranks_per_engine
        self._disk_root = Path(disk_root) if disk_root else None
        self._last_disk_dir: Path | None = None

    # ------------------------------------------------------------------------------------------------

    def _rank(self) -> int:
        return dist.get_rank() if dist.is_initialized() else 0

    def _tensors(self, rank0: bool, mode: str) -> Iterator[NamedTensor]:
        if not rank0:
            return iter_full_tensors(self.model)
        on_gpu_wire = mode == "distributed" and self.device.type == "cuda"
        return iter_full_tensors(self.model, dtype=self.dtype, device=self.device if on_gpu_wire else "cpu")

    def _disk_dir(self) -> Path:
        if self._disk_root is None:
            self._disk_root = Path(tempfile.mkdtemp(prefix="miles-weight-sync-"))
            atexit.register(shutil.rmtree, self._disk_root, True)
        return self._disk_root

    def update(self, engine_urls: list[str], weight_version: str) -> dict[str, float]:
        """Send the weights to every engine of ``engine_urls`` and set ``weight_version`` (collective)."""
        mode = self.mode
        weight_version = str(weight_version)
        start = time.perf_counter()
        error: str | None = None
        sent = 0
        if self._rank() == 0:
            tensors = self._tensors(True, mode)
            try:
                sent, mode = self._send_from_rank0(engine_urls, weight_version, tensors, mode)
            except Exception as exc:  # noqa: BLE001 - shared with every rank below
                error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, WeightSyncError) else str(exc)
                logger.error("weight update to version %s failed: %s", weight_version, error)
            finally:
                for _ in tensors:  # keep the other ranks' all-gathers paired even after a failure
                    pass
        else:
            for _ in self._tensors(False, mode):
                pass
        if dist.is_initialized() and dist.get_world_size() > 1:
            box = [error]
            dist.broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise WeightSyncError(error)
        seconds = time.perf_counter() - start
        gigabytes = sent / 1e9
        return {
            "perf/update_weights_time": seconds,
            "perf/update_weights_gb": gigabytes,
            "perf/update_weights_s_per_gb": seconds / gigabytes if gigabytes else 0.0,
        }

    def _send_from_rank0(self, engine_urls: list[str], weight_version: str, tensors: Iterator[NamedTensor],
                         mode: str) -> tuple[int, str]:
        with EngineCaller(engine_urls) as caller:
            caller.post_all("/pause_generation", {})
            try:
                sent, mode = self._transfer(caller, tensors, weight_version, mode)
                caller.check_versions(weight_version)
            finally:
                caller.post_all("/continue_generation", {})
        return sent, mode

    def _transfer(self, caller: EngineCaller, tensors: Iterator[NamedTensor], weight_version: str,
                  mode: str) -> tuple[int, str]:
        buckets = iter_buckets(tensors, self.buffer_bytes)
        if mode == "tensor":
            return send_tensor_buckets(caller, buckets, weight_version=weight_version), mode
        if mode == "distributed":
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            try:
                sent = send_distributed(
                    caller, buckets, weight_version=weight_version, master_address=self.master_address,
                    ranks_per_engine=[self.ranks_per_engine] * len(caller.urls), backend=backend,
                    timeout_s=120.0 if self.requested_mode == "auto" else 600.0,
                )
                return sent, mode
            except WeightSyncError as exc:
                if self.requested_mode != "auto" or "weight-update group" not in str(exc):
                    raise
                logger.warning("the distributed weight update could not start (%s); falling back to disk mode for "
                               "this and later syncs (set --update-weight-transfer-mode to choose)", exc)
                self.mode = mode = "disk"
        sent, self._last_disk_dir = send_via_disk(
            caller, buckets, weight_version=weight_version, root=self._disk_dir(),
            source_checkpoint=self.hf_checkpoint, previous=self._last_disk_dir,
        )
        return sent, mode
