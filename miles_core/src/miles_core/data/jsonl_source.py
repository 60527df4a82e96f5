"""The ``jsonl`` data source (default ``--data-source``): prompts from a JSON-lines file, with a buffer.

What it does, in the order a run meets it:

- reads ``--prompt-data`` once (``miles_core.data.prompt_dataset``: keys, chat template, length filter);
- ``get_samples(n)`` hands out ``n`` groups of ``--n-samples-per-prompt`` samples. Groups handed back
  with ``add_samples`` (aborted partial rollouts) come first, drained through the selected
  ``--buffer-filter`` (default ``pop_first``); then fresh prompts. Each copy of a prompt gets the next
  ``index``, each prompt the next ``group_index``;
- walks the prompts epoch by epoch; with ``--rollout-shuffle`` each epoch is a permutation seeded by
  ``--rollout-seed + epoch`` (so a resumed run sees the same order);
- ``save(rollout_id)`` writes its position *and* its buffer as JSON (never pickle) under
  ``--save``; ``load(rollout_id)`` restores them from ``--load``, so a resumed run continues with the
  very batch an uninterrupted run would have produced.

``derive_num_rollout(args)`` turns ``--num-epoch`` into a number of rollouts from the dataset size.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from miles_core.data.prompt_dataset import PromptDataset, PromptRecord, prompt_dataset_from_args
from miles_core.data.sample import Sample
from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import DataSourceSpec

__all__ = ["JsonlDataSource", "derive_num_rollout", "state_path"]

logger = logging.getLogger(__name__)

STATE_FORMAT = "miles-jsonl-data-source"
STATE_VERSION = 1
_STATE_RE = re.compile(r"^data_source_state_(\d+)\.json$")


def state_path(checkpoint_dir: str | os.PathLike, rollout_id: int) -> Path:
    """Where the data-source state of ``rollout_id`` lives under a ``--save`` / ``--load`` directory."""
    return Path(checkpoint_dir) / "rollout" / f"data_source_state_{rollout_id}.json"


def derive_num_rollout(args: Any) -> int:
    """``--num-rollout``, or ``(prompts // --rollout-batch-size) * --num-epoch`` (default 1) when it is unset."""
    if getattr(args, "num_rollout", None) is not None:
        return int(args.num_rollout)
    num_epoch = getattr(args, "num_epoch", None) or 1  # one pass over the data when neither flag is given
    dataset = prompt_dataset_from_args(args)
    rollouts_per_epoch = len(dataset) // args.rollout_batch_size
    if rollouts_per_epoch == 0:
        raise ValueError(
            f"--prompt-data {args.prompt_data!r} has {len(dataset)} usable prompts, fewer than "
            f"--rollout-batch-size {args.rollout_batch_size}: one rollout needs that many prompts"
        )
    return rollouts_per_epoch * int(num_epoch)


class JsonlDataSource:
    """Prompt groups from ``--prompt-data`` plus a buffer of groups handed back (see the module docstring)."""

    def __init__(self, args: Any, plugin_manager: Any = None, dataset: PromptDataset | None = None) -> None:
        self.args = args
        self.n_samples_per_prompt = int(args.n_samples_per_prompt)
        self.dataset = dataset if dataset is not None else prompt_dataset_from_args(args)
        self.plugin_manager = plugin_manager
        self.epoch = 0
        self.offset = 0  # position inside the current epoch's order
        self.next_group_index = 0
        self.next_sample_index = 0
        self.buffer: list[list[Sample]] = []
        self._order = self._epoch_order(0)
        self._buffer_filter: Callable[..., Any] | None = None

    # ------------------------------------------------------------------------------------ handing out

    def get_samples(self, num_groups: int) -> list[list[Sample]]:
        """The next ``num_groups`` groups: buffered groups first (through the buffer filter), then new prompts."""
        groups: list[list[Sample]] = []
        if self.buffer:
            taken = self._buffer_filter_fn()(self.args, None, self.buffer, num_groups)
            if len(taken) > num_groups:
                raise ValueError(f"the buffer filter returned {len(taken)} groups when {num_groups} were asked for")
            groups.extend(taken)
        while len(groups) < num_groups:
            groups.append(self._new_group(self._next_record()))
        return groups

    def add_samples(self, groups: list[list[Sample]]) -> None:
        """Hand groups back (aborted partial rollouts); they are served before new prompts."""
        for group in groups:
            if len(group) != self.n_samples_per_prompt:
                raise ValueError(
                    f"add_samples: a group has {len(group)} samples but --n-samples-per-prompt is "
                    f"{self.n_samples_per_prompt}; groups must be handed back whole"
                )
        self.buffer.extend(groups)

    def get_buffer_length(self) -> int:
        return len(self.buffer)

    def metrics(self) -> dict[str, float]:
        """Data-loading counters to log with a rollout (prompts dropped at load time, by reason; the epoch)."""
        out = {f"rollout/data/dropped_{reason}": float(n) for reason, n in sorted(self.dataset.dropped.items())}
        out["rollout/data/epoch"] = float(self.epoch)
        out["rollout/data/buffer_groups"] = float(len(self.buffer))
        return out

    def close(self) -> None:
        """Nothing to release: the file was read whole at start."""

    def _next_record(self) -> PromptRecord:
        if self.offset >= len(self._order):
            self.epoch += 1
            self.offset = 0
            self._order = self._epoch_order(self.epoch)
            logger.info("data source %s: starting epoch %d", self.dataset.path, self.epoch)
        record = self.dataset.records[self._order[self.offset]]
        self.offset += 1
        return record

    def _new_group(self, record: PromptRecord) -> list[Sample]:
        group = []
        for _ in range(self.n_samples_per_prompt):
            group.append(Sample(
                index=self.next_sample_index,
                group_index=self.next_group_index,
                prompt=copy.deepcopy(record.prompt),
                label=copy.deepcopy(record.label),
                metadata=copy.deepcopy(record.metadata),
            ))
            self.next_sample_index += 1
        self.next_group_index += 1
        return group

    def _epoch_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.dataset)))
        if getattr(self.args, "rollout_shuffle", False):
            random.Random(int(self.args.rollout_seed) + epoch).shuffle(order)
        return order

    def _buffer_filter_fn(self) -> Callable[..., Any]:
        if self._buffer_filter is None:
            from miles_core.filters.selection import resolve_filter

            if self.plugin_manager is None:
                from miles_core.plugins.manager import plugin_manager_from_args

                self.plugin_manager = plugin_manager_from_args(self.args)
            self._buffer_filter = resolve_filter(self.args, self.plugin_manager, "buffer")
            if self._buffer_filter is None:
                from miles_core.filters.core_filters import pop_first

                self._buffer_filter = pop_first
        return self._buffer_filter

    # ------------------------------------------------------------------------------------ save / load

    def state_dict(self) -> dict[str, Any]:
        """The position and the buffer, as JSON-safe values."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "prompt_data": self.dataset.path,
            "num_prompts": len(self.dataset),
            "n_samples_per_prompt": self.n_samples_per_prompt,
            "rollout_shuffle": bool(getattr(self.args, "rollout_shuffle", False)),
            "rollout_seed": int(getattr(self.args, "rollout_seed", 0)),
            "epoch": self.epoch,
            "offset": self.offset,
            "next_group_index": self.next_group_index,
            "next_sample_index": self.next_sample_index,
            "buffer": [[sample.to_dict() for sample in group] for group in self.buffer],
        }

    def load_state_dict(self, state: dict[str, Any], *, source: str = "state") -> None:
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError(f"{source}: not a {STATE_FORMAT} v{STATE_VERSION} state file")
        if state["num_prompts"] != len(self.dataset):
            raise ValueError(
                f"{source}: saved for a dataset of {state['num_prompts']} prompts, but --prompt-data "
                f"{self.dataset.path!r} now has {len(self.dataset)}; the position cannot be restored. "
                "Use the same data, or remove the state file to start the data from the beginning."
            )
        if state["n_samples_per_prompt"] != self.n_samples_per_prompt and state["buffer"]:
            raise ValueError(
                f"{source}: the saved buffer holds groups of {state['n_samples_per_prompt']} samples but "
                f"--n-samples-per-prompt is now {self.n_samples_per_prompt}"
            )
        for key in ("rollout_shuffle", "rollout_seed"):
            current = bool(getattr(self.args, key, False)) if key == "rollout_shuffle" else int(getattr(self.args, key, 0))
            if state[key] != current:
                logger.warning("%s: saved with %s=%r, now %r; the prompt order differs from the saved run",
                               source, key, state[key], current)
        self.epoch = int(state["epoch"])
        self.offset = int(state["offset"])
        self.next_group_index = int(state["next_group_index"])
        self.next_sample_index = int(state["next_sample_index"])
        self.buffer = [[Sample.from_dict(d) for d in group] for group in state["buffer"]]
        self._order = self._epoch_order(self.epoch)

    def save(self, rollout_id: int) -> None:
        """Write the state of ``rollout_id`` to ``--save``/rollout/ (atomically); nothing without ``--save``."""
        save_dir = getattr(self.args, "save", None)
        if not save_dir:
            return
        path = state_path(save_dir, rollout_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = json.dumps(self.state_dict(), default=_not_json)
        except TypeError as exc:
            raise TypeError(f"data source state for rollout {rollout_id} cannot be saved as JSON: {exc}") from exc
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def load(self, rollout_id: int | None = None) -> None:
        """Restore the state saved for ``rollout_id`` (the latest one when ``None``) from ``--load``."""
        load_dir = getattr(self.args, "load", None)
        if not load_dir:
            return
        if rollout_id is None:
            rollout_id = _latest_rollout_id(Path(load_dir) / "rollout")
            if rollout_id is None:
                logger.warning("--load %s holds no data-source state; the data starts from the beginning", load_dir)
                return
        path = state_path(load_dir, rollout_id)
        if not path.exists():
            logger.warning("no data-source state at %s; the data starts from the beginning", path)
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        self.load_state_dict(state, source=str(path))
        logger.info("data source resumed from %s: epoch %d, prompt %d, %d buffered groups",
                    path, self.epoch, self.offset, len(self.buffer))


def _latest_rollout_id(directory: Path) -> int | None:
    if not directory.is_dir():
        return None
    ids = [int(m.group(1)) for p in directory.iterdir() if (m := _STATE_RE.match(p.name))]
    return max(ids) if ids else None


def _not_json(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} value {value!r:.80} is not JSON-serialisable (found in a buffered Sample)")


@hookimpl
def miles_data_sources() -> Iterable[DataSourceSpec]:
    yield DataSourceSpec(name="jsonl", description="Prompts from a JSON-lines file (--prompt-data), with a resumable buffer",
                         factory=JsonlDataSource)

