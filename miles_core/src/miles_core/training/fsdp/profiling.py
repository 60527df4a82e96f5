"""``--use-pytorch-profiler``: a torch profiler trace of optimizer steps ``--profile-step-start`` …
``--profile-step-end`` (global steps), for the sub-loops named by ``--profile-target``
(``train_overall``: every phase, ``train_actor``: the actor's steps, ``train_log_probs``: forward-only
passes). Traces go to ``{--tensorboard-dir or --run-dir or .}/profile/rank{r}_step{start}-{end}.json``
(open in Perfetto or ``chrome://tracing``). On CUDA the allocator history of the same window is also
dumped to ``--memory-snapshot-path`` (viewable at pytorch.org/memory_viz).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

__all__ = ["TrainProfiler"]

logger = logging.getLogger(__name__)


class TrainProfiler:
    """Starts a profiler when the step window opens and writes the trace when it closes."""

    def __init__(self, args: argparse.Namespace, rank: int, device: torch.device) -> None:
        self.enabled = bool(args.use_pytorch_profiler)
        self.start = int(args.profile_step_start)
        self.end = int(args.profile_step_end)
        targets = args.profile_target or ["train_overall"]
        self.targets = set(targets if isinstance(targets, (list, tuple)) else [targets])
        root = getattr(args, "tensorboard_dir", None) or args.run_dir or "."
        self.out = Path(root) / "profile" / f"rank{rank}_step{self.start}-{self.end}.json"
        self.memory_snapshot = Path(args.memory_snapshot_path) if args.memory_snapshot_path else None
        self.device = device
        self._profiler: torch.profiler.profile | None = None
        self._done = False

    def _in_window(self, step: int) -> bool:
        return self.enabled and not self._done and self.start <= step < self.end

    @contextmanager
    def scope(self, target: str, step: int) -> Iterator[None]:
        """Profile the enclosed work when ``target`` is selected and ``step`` is in the window."""
        wanted = "train_overall" in self.targets or target in self.targets
        if not (wanted and self._in_window(step)):
            yield
            return
        if self._profiler is None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
                torch.cuda.memory._record_memory_history(max_entries=100_000)
            self._profiler = torch.profiler.profile(activities=activities, record_shapes=True, with_stack=False)
            self._profiler.__enter__()
        with torch.profiler.record_function(target) if self._profiler else nullcontext():
            yield

    def step(self, global_step: int) -> None:
        """Called after each optimizer step: closes the window once ``global_step`` reaches the end."""
        if self._profiler is None or global_step < self.end:
            return
        self._profiler.__exit__(None, None, None)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._profiler.export_chrome_trace(str(self.out))
        logger.info("profiler trace of steps %d-%d written to %s", self.start, self.end, self.out)
        if self.device.type == "cuda" and self.memory_snapshot is not None:
            torch.cuda.memory._dump_snapshot(str(self.memory_snapshot))
            torch.cuda.memory._record_memory_history(enabled=None)
        self._profiler = None
        self._done = True
