"""Running ``miles train`` as a user does, and checking what it leaves behind.

Every run is a subprocess in a session of its own, tagged with a unique ``MILES_E2E_RUN_TAG``
environment variable. The variable is inherited by everything the run starts (Ray's processes, the
workers, the fate-share guards, engines and router), so :func:`tagged_processes` finds exactly this
run's processes in ``/proc``, and :meth:`MilesTrain.cleanup` can prove none is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MILES = str(Path(sys.executable).with_name("miles"))
TAG_VAR = "MILES_E2E_RUN_TAG"
SERVER_MARKERS = ("miles_core.engines.embedded", "miles_core.router", "miles_core.ray.fate_share")


def base_flags(model: Path, prompts: Path, run_dir: Path, *, prompts_per_rollout: int = 4,
               num_rollout: int | None = 3, lr: float = 5e-3) -> list[str]:
    """The say-digit task on the tiny Qwen3: GRPO, 8 samples per prompt, 4 response tokens, one step per rollout
    (``num_rollout=None`` leaves ``--num-rollout`` out)."""
    flags = [
        "--hf-checkpoint", str(model), "--attn-implementation", "sdpa",
        "--prompt-data", str(prompts), "--input-key", "prompt", "--label-key", "label", "--rm-type", "say_digit",
        "--rollout-batch-size", str(prompts_per_rollout), "--n-samples-per-prompt", "8",
        "--global-batch-size", str(prompts_per_rollout * 8), "--micro-batch-size", str(prompts_per_rollout * 8),
        "--rollout-max-response-len", "4",
        "--lr", str(lr), "--weight-decay", "0", "--seed", "1234", "--rollout-seed", "42",
        "--actor-num-nodes", "1", "--actor-num-gpus-per-node", "1", "--rollout-num-gpus", "1",
        "--run-dir", str(run_dir),
    ]
    return flags + (["--num-rollout", str(num_rollout)] if num_rollout is not None else [])


@dataclass
class ProcessInfo:
    pid: int
    cmdline: str

    @property
    def is_server(self) -> bool:
        return any(marker in self.cmdline for marker in SERVER_MARKERS)

    @property
    def module(self) -> str | None:
        """``M`` of a ``python -m M ...`` command line."""
        words = self.cmdline.split()
        return words[2] if len(words) > 2 and words[1] == "-m" else None


def tagged_processes(tag: str) -> list[ProcessInfo]:
    """Live (non-zombie) processes whose environment holds ``MILES_E2E_RUN_TAG=tag``."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(ProcessInfo(int(proc.name), cmdline))
    return found


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class MilesTrain:
    """One ``miles train`` subprocess with its own tag, log file and short Ray temp dir."""

    def __init__(self, flags: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.flags = flags
        self.log_path = log_path
        self.tag = uuid.uuid4().hex
        self.ray_tmp = tempfile.mkdtemp(prefix="mr", dir="/tmp")  # Ray's socket paths must stay short
        self.env = {**os.environ, TAG_VAR: self.tag, "RAY_TMPDIR": self.ray_tmp, "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> MilesTrain:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([MILES, "train", *self.flags], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        return self

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"miles train did not finish within {timeout:.0f}s\n{self.output_tail()}") from None

    def run(self, timeout: float = 300) -> MilesTrain:
        """Start, wait, and insist on exit code 0."""
        self.start()
        code = self.wait(timeout)
        assert code == 0, f"miles train exited with {code}\n{self.output_tail()}"
        return self

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output_tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def leftovers(self) -> list[ProcessInfo]:
        return tagged_processes(self.tag)

    def servers(self, module: str = "miles_core.engines.embedded") -> list[ProcessInfo]:
        """This run's live server processes of ``module`` (not their fate-share guards), oldest first."""
        return sorted((p for p in self.leftovers() if p.module == module), key=lambda p: p.pid)

    def cleanup(self) -> list[ProcessInfo]:
        """Kill whatever of this run still lives (a test that SIGKILLs the driver leaves Ray's daemons);
        returns the engine/router processes found alive *before* that, which a correct run never leaves."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        def no_servers() -> bool:
            return not any(p.is_server for p in self.leftovers())

        try:
            wait_for(no_servers, timeout=20, what="engine and router processes to exit")
            servers = []
        except TimeoutError:
            servers = [p for p in self.leftovers() if p.is_server]
        for proc in self.leftovers():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.ray_tmp, ignore_errors=True)
        return servers


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rollout_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The per-rollout rows (eval rows are logged apart, with ``eval/step``)."""
    return [row for row in read_rows(run_dir) if "rollout/step" in row]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def wandb_history_keys(wandb_file: Path) -> set[str]:
    """The metric keys logged to an offline wandb run (``run-*.wandb``).

    The file is a LevelDB-style log (a 7-byte ``:W&B`` header, then 32 KiB blocks of records
    ``crc32 | length | type | data``, a record split over blocks as FIRST/MIDDLE/LAST) of wandb's
    ``Record`` protobufs; history records hold the logged rows.
    """
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block, pos = wandb_file.read_bytes(), 32768, 7
    assert data[:4] == b":W&B", f"{wandb_file} is not a wandb run file"
    records, pieces = [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # trailer padding of a block
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            pos += left - 7
            continue
        chunk, pos = data[pos:pos + length], pos + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pieces = chunk
        elif kind == 3:
            pieces += chunk
        elif kind == 4:
            records.append(pieces + chunk)
    keys: set[str] = set()
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            keys.update(item.key or "/".join(item.nested_key) for item in record.history.item)
    return keys
