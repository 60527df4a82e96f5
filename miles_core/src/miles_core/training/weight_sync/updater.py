"""Push the trainer's weights to every engine after a rollout, and prove they arrived.

The session around the transfer (Miles §10): ``/pause_generation`` → transfer (the last request sets
``weight_version`` and flushes the prefix cache) → ``/get_weight_version`` on every engine must equal
the new version (else an error naming the engine) → ``/continue_generation`` (always, even after an
error, so a failed sync never leaves engines paused).

``--update-weight-transfer-mode``:

- ``tensor``: in-memory buckets to ``/update_weights_from_tensor`` (embedded engines only);
- ``distributed``: broadcast through a group of trainer rank 0 and the engines — gloo when the engines
  run on CPU, NCCL when they run on GPUs (then the trainer must be on a GPU too, and not on the same
  GPU as an engine: NCCL refuses two ranks on one device);
- ``disk``: an HF directory and ``/update_weights_from_disk`` (portable fallback);
- ``auto``: colocated → ``tensor`` with embedded engines, ``disk`` with SGLang; otherwise
  ``distributed``, falling back to ``disk`` (with a warning) when the group cannot be formed.

What the engines are (embedded or SGLang, how many ranks, which device) is asked of the engines
themselves (``/get_server_info``), once per set of URLs.

Every train rank calls :meth:`WeightUpdater.update` (gathering FSDP shards is collective); rank 0 alone
talks to the engines, then tells the other ranks whether it worked, so all ranks raise the same error.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from miles_core.training.weight_sync.disk_mode import send_via_disk
from miles_core.training.weight_sync.distributed_mode import GroupFormationError, send_distributed
from miles_core.training.weight_sync.engine_http import EngineCaller, WeightSyncError
from miles_core.training.weight_sync.hf_tensors import NamedTensor, iter_buckets, iter_full_tensors
from miles_core.training.weight_sync.tensor_mode import SGLANG_TENSOR_MODE_ERROR, send_tensor_buckets

__all__ = ["TRANSFER_MODES", "EngineFleet", "describe_engines", "resolve_transfer_mode", "WeightUpdater"]

logger = logging.getLogger(__name__)

TRANSFER_MODES = ("auto", "tensor", "distributed", "disk")


@dataclass(frozen=True)
class EngineFleet:
    """What serves the engine URLs: ``kind`` ``"embedded"`` (all Miles embedded engines) or ``"sglang"``,
    each engine's number of ranks, and ``device_type`` ``"cpu"`` or ``"cuda"``."""

    kind: str
    ranks: tuple[int, ...]
    device_type: str


def describe_engines(caller: EngineCaller, default_ranks: int) -> EngineFleet:
    """Ask every engine's ``/get_server_info`` (SGLang's ``tp_size``; the embedded engine's ``device``)."""
    kinds, ranks, devices = set(), [], set()
    for url in caller.urls:
        info = caller.get(url, "/get_server_info")
        if info.get("engine") == "miles-embedded":
            kinds.add("embedded")
            ranks.append(1)
            devices.add("cpu" if str(info.get("device", "cpu")).startswith("cpu") else "cuda")
        else:
            kinds.add("sglang")
            ranks.append(int(info.get("tp_size") or default_ranks))
            devices.add("cuda")
    if len(devices) > 1:
        raise WeightSyncError("some engines run on CPU and some on GPUs; one weight update cannot serve both")
    return EngineFleet("embedded" if kinds == {"embedded"} else "sglang", tuple(ranks), devices.pop())


def resolve_transfer_mode(requested: str, *, colocate: bool, kind: str) -> str:
    """The concrete mode for ``--update-weight-transfer-mode requested`` against engines of ``kind``."""
    if requested not in TRANSFER_MODES:
        raise ValueError(f"--update-weight-transfer-mode {requested!r}: choose one of {', '.join(TRANSFER_MODES)}")
    if requested == "auto":
        if colocate:
            return "tensor" if kind == "embedded" else "disk"
        return "distributed"
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
        colocate: bool,
        buffer_bytes: int,
        hf_checkpoint: str,
        dtype: torch.dtype,
        device: torch.device,
        master_address: str,
        ranks_per_engine: int = 1,
        disk_root: str | Path | None = None,
    ) -> None:
        if mode not in TRANSFER_MODES:
            raise ValueError(f"--update-weight-transfer-mode {mode!r}: choose one of {', '.join(TRANSFER_MODES)}")
        self.model = model
        self.requested_mode = mode
        self.colocate = colocate
        self.buffer_bytes = int(buffer_bytes)
        self.hf_checkpoint = hf_checkpoint
        self.dtype = dtype
        self.device = device
        self.master_address = master_address
        self.ranks_per_engine = ranks_per_engine
        self._disk_root = Path(disk_root) if disk_root else None
        self._last_disk_dir: Path | None = None
        self._fleet: EngineFleet | None = None
        self._fleet_urls: tuple[str, ...] = ()
        self._fell_back_to_disk = False

    def update(self, engine_urls: list[str], weight_version: str) -> dict[str, float]:
        """Send the weights to every engine of ``engine_urls`` and set ``weight_version`` (collective)."""
        weight_version = str(weight_version)
        start = time.perf_counter()
        error: str | None = None
        sent = 0
        tensors: Iterator[NamedTensor] | None = None
        if self._rank() == 0:
            try:
                with EngineCaller(engine_urls) as caller:
                    mode, fleet = self._resolve(caller)
                    tensors = self._rank0_tensors(mode, fleet)
                    caller.post_all("/pause_generation", {})
                    try:
                        sent = self._transfer(caller, tensors, weight_version, mode, fleet)
                        caller.check_versions(weight_version)
                    finally:
                        caller.post_all("/continue_generation", {})
            except Exception as exc:  # noqa: BLE001 - shared with every rank below
                error = str(exc) if isinstance(exc, WeightSyncError) else f"{type(exc).__name__}: {exc}"
                logger.error("weight update to version %s failed: %s", weight_version, error)
        for _ in tensors if tensors is not None else iter_full_tensors(self.model):
            pass  # the rest of the walk: keeps every rank's all-gathers paired, even after a failure
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

    # ------------------------------------------------------------------------------------------------

    def _rank(self) -> int:
        return dist.get_rank() if dist.is_initialized() else 0

    def _resolve(self, caller: EngineCaller) -> tuple[str, EngineFleet]:
        if self._fleet is None or self._fleet_urls != tuple(caller.urls):
            self._fleet = describe_engines(caller, self.ranks_per_engine)
            self._fleet_urls = tuple(caller.urls)
        if self._fell_back_to_disk:
            return "disk", self._fleet
        return resolve_transfer_mode(self.requested_mode, colocate=self.colocate, kind=self._fleet.kind), self._fleet

    def _rank0_tensors(self, mode: str, fleet: EngineFleet) -> Iterator[NamedTensor]:
        """Rank 0's walk: cast to the engines' dtype, on the wire's device (CUDA only for NCCL)."""
        on_gpu_wire = mode == "distributed" and fleet.device_type == "cuda"
        if on_gpu_wire and self.device.type != "cuda":
            raise WeightSyncError("the engines run on GPUs, so the distributed update uses NCCL, but the trainer has "
                                  "no GPU; use --update-weight-transfer-mode disk")
        return iter_full_tensors(self.model, dtype=self.dtype, device=self.device if on_gpu_wire else "cpu")

    def _disk_dir(self) -> Path:
        if self._disk_root is None:
            self._disk_root = Path(tempfile.mkdtemp(prefix="miles-weight-sync-"))
            atexit.register(shutil.rmtree, self._disk_root, True)
        return self._disk_root

    def _transfer(self, caller: EngineCaller, tensors: Iterator[NamedTensor], weight_version: str, mode: str,
                  fleet: EngineFleet) -> int:
        buckets = iter_buckets(tensors, self.buffer_bytes)
        if mode == "tensor":
            return send_tensor_buckets(caller, buckets, weight_version=weight_version)
        if mode == "distributed":
            try:
                return send_distributed(
                    caller, buckets, weight_version=weight_version, master_address=self.master_address,
                    ranks_per_engine=list(fleet.ranks), backend="nccl" if fleet.device_type == "cuda" else "gloo",
                    timeout_s=120.0 if self.requested_mode == "auto" else 600.0,
                )
            except GroupFormationError as exc:
                if self.requested_mode != "auto":
                    raise
                logger.warning("the distributed weight update could not start (%s); falling back to disk mode for "
                               "this and later syncs (set --update-weight-transfer-mode to choose)", exc)
                self._fell_back_to_disk = True
        sent, self._last_disk_dir = send_via_disk(
            caller, buckets, weight_version=weight_version, root=self._disk_dir(),
            source_checkpoint=self.hf_checkpoint, previous=self._last_disk_dir,
        )
        return sent
