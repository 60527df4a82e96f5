"""``--save-debug-rollout-data`` / ``--load-debug-rollout-data``: a rollout on disk, replayable without engines.

The file is JSON lines, so loading it cannot execute code (Miles pickles with ``torch.save``; a
pickle from an untrusted source is a code-execution hole). Line 1 is a header
``{"format": "miles-debug-rollout", "version": 1, "rollout_id", "evaluation", "num_groups", "num_samples"}``;
each further line is ``{"group": i, "dataset": name | null, "sample": Sample.to_dict()}``. The path
template may hold ``{rollout_id}`` (evaluations use ``eval_<id>``).

The rollout manager calls :func:`save_debug_rollout` after every training rollout (before conversion
to the training batch) and :func:`load_debug_rollout` instead of the rollout function, so the flags
work the same for every ``--rollout-function``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from miles_core.data.sample import Sample

__all__ = ["debug_data_path", "save_debug_rollout", "load_debug_rollout", "read_debug_rollout_file"]

FORMAT = "miles-debug-rollout"
VERSION = 1


def debug_data_path(template: str, rollout_id: int, *, evaluation: bool = False) -> Path:
    """The file for ``rollout_id`` from a path template (``{rollout_id}`` is filled in)."""
    name = f"eval_{rollout_id}" if evaluation else rollout_id
    try:
        return Path(template.format(rollout_id=name))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"debug rollout data path {template!r}: only {{rollout_id}} may be templated ({exc})") from exc


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} value {value!r:.80} in a Sample is not JSON-serialisable")


def save_debug_rollout(template: str, rollout_id: int, groups: list[list[Sample]], *, evaluation: bool = False,
                            datasets: list[str | None] | None = None) -> Path:
    """Write ``groups`` (and, for evaluations, each group's dataset name) to the templated path."""
    path = debug_data_path(template, rollout_id, evaluation=evaluation)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": VERSION, "rollout_id": rollout_id, "evaluation": evaluation,
              "num_groups": len(groups), "num_samples": sum(len(g) for g in groups)}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        for i, group in enumerate(groups):
            dataset = datasets[i] if datasets else None
            for sample in group:
                out.write(json.dumps({"group": i, "dataset": dataset, "sample": sample.to_dict()}, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def read_debug_rollout_file(path: str | os.PathLike) -> tuple[dict[str, Any], list[list[Sample]], list[str | None]]:
    """The header, the groups and each group's dataset name from one debug file."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"--load-debug-rollout-data: {path} does not exist") from None
    if not lines:
        raise ValueError(f"{path}: empty file; expected a miles debug rollout (JSON lines with a header)")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:1: not valid JSON ({exc.msg}); is this a miles debug rollout file?") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}:1: not a {FORMAT} header (pickled .pt files from Miles are not read, for safety)")
    if header.get("version") != VERSION:
        raise ValueError(f"{path}:1: version {header.get('version')} is not supported (expected {VERSION})")
    groups: list[list[Sample]] = []
    datasets: list[str | None] = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            group, sample = int(row["group"]), Sample.from_dict(row["sample"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{line_number}: not a debug rollout row ({type(exc).__name__}: {exc})") from exc
        if group == len(groups):
            groups.append([])
            datasets.append(row.get("dataset"))
        elif group != len(groups) - 1:
            raise ValueError(f"{path}:{line_number}: group {group} out of order (expected {len(groups) - 1} or {len(groups)})")
        groups[group].append(sample)
    expected = header.get("num_samples")
    if expected is not None and expected != sum(len(g) for g in groups):
        raise ValueError(f"{path}: header announces {expected} samples but the file holds {sum(len(g) for g in groups)} "
                         "(truncated file?)")
    return header, groups, datasets


def load_debug_rollout(template: str, rollout_id: int, *, evaluation: bool = False) -> list[list[Sample]]:
    """The groups saved for ``rollout_id`` under the path template."""
    _, groups, _ = read_debug_rollout_file(debug_data_path(template, rollout_id, evaluation=evaluation))
    return groups
