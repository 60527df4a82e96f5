"""Reading a prompt file (JSON lines) into prompt records, with the checks a user needs to fix their data.

One row per line: ``--input-key`` holds the prompt (text or a list of chat messages), ``--label-key``
the ground truth, ``--metadata-key`` a dict (or a JSON string of one) handed to rewards and filters,
``--tool-key`` tool specs for the chat template. With ``--apply-chat-template`` a text prompt becomes
one user message and the tokenizer's template renders it, so ``Sample.prompt`` is what the engine sees.
``--rollout-max-prompt-len`` drops prompts whose tokens are longer; every drop is counted by reason.

Errors name the file and line (``data.jsonl:17: not valid JSON ...``) so a bad row is found at once.
A path may select rows with ``path@[start:end]`` (Python slice bounds), as in Miles.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miles_core.data.tokenization import chat_template_kwargs, encode_prompt, load_tokenizer, render_chat_template

__all__ = ["PromptRecord", "PromptDataset", "PromptDataError", "read_prompt_dataset", "prompt_dataset_from_args"]

logger = logging.getLogger(__name__)

_SLICE_RE = re.compile(r"^(?P<path>.+)@\[(?P<start>-?\d*):(?P<end>-?\d*)\]$")


class PromptDataError(ValueError):
    """A prompt file that cannot be used; the message names the file, the line and what to change."""


@dataclass(frozen=True)
class PromptRecord:
    """One prompt as read from the file (before it is copied into ``n_samples_per_prompt`` samples)."""

    prompt: str | list[dict[str, Any]]
    label: Any
    metadata: dict[str, Any]
    line_number: int


@dataclass
class PromptDataset:
    """The usable prompts of one file, and how many rows were dropped for which reason."""

    path: str
    records: list[PromptRecord]
    dropped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.records)


def _split_slice(path: str) -> tuple[str, slice | None]:
    match = _SLICE_RE.match(path)
    if not match or Path(path).exists():
        return path, None
    start = int(match["start"]) if match["start"] else None
    end = int(match["end"]) if match["end"] else None
    return match["path"], slice(start, end)


def _parse_json_field(value: Any, *, what: str, where: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise PromptDataError(f"{where}: {what} is a string that is not valid JSON ({exc.msg})") from exc
    return value


def read_prompt_dataset(
    path: str,
    *,
    input_key: str,
    label_key: str | None = None,
    metadata_key: str | None = None,
    tool_key: str | None = None,
    apply_chat_template: bool = False,
    template_kwargs: dict[str, Any] | None = None,
    max_prompt_len: int | None = None,
    tokenizer_path: str | None = None,
) -> PromptDataset:
    """Read ``path`` (JSON lines) into a :class:`PromptDataset`.

    :raises PromptDataError: on a missing or empty file, a malformed line, a row without ``input_key``,
        a label present in some rows only, a metadata field that is not an object, or no usable row.
    """
    file_path, row_slice = _split_slice(path)
    if Path(file_path).suffix == ".parquet":
        raise PromptDataError(f"{file_path}: parquet files are not read by the jsonl data source; convert it to JSON lines")
    try:
        text = Path(file_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptDataError(f"prompt file {file_path!r} does not exist (check --prompt-data / --eval-prompt-data)") from None
    except OSError as exc:
        raise PromptDataError(f"prompt file {file_path!r} cannot be read: {exc}") from exc

    rows: list[tuple[int, dict[str, Any]]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptDataError(f"{file_path}:{line_number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(row, dict):
            raise PromptDataError(f"{file_path}:{line_number}: each line must be a JSON object, got {type(row).__name__}")
        rows.append((line_number, row))
    if not rows:
        raise PromptDataError(f"prompt file {file_path!r} is empty: it needs one JSON object per line")
    if row_slice is not None:
        rows = rows[row_slice]
        if not rows:
            raise PromptDataError(f"{path}: the row slice selects no rows out of the file's rows")

    labelled = sum(1 for _, row in rows if label_key and label_key in row)
    if label_key and labelled == 0:
        logger.warning("%s: no row has the label key %r; every sample's label is None", file_path, label_key)

    tokenizer = None
    if apply_chat_template or max_prompt_len is not None:
        tokenizer = load_tokenizer(tokenizer_path)
    template_kwargs = template_kwargs or {}

    records: list[PromptRecord] = []
    dropped: Counter = Counter()
    for line_number, row in rows:
        where = f"{file_path}:{line_number}"
        if input_key not in row:
            raise PromptDataError(
                f"{where}: no key {input_key!r} (--input-key); the keys on this line are {sorted(row)}"
            )
        prompt = row[input_key]
        if not isinstance(prompt, (str, list)):
            raise PromptDataError(f"{where}: {input_key!r} must be a string or a list of chat messages, got {type(prompt).__name__}")
        if label_key and labelled and label_key not in row:
            raise PromptDataError(
                f"{where}: no key {label_key!r} (--label-key) although other rows have one; "
                f"the keys on this line are {sorted(row)}"
            )
        label = row.get(label_key) if label_key else None

        metadata: Any = {}
        if metadata_key and row.get(metadata_key) is not None:
            metadata = _parse_json_field(row[metadata_key], what=f"{metadata_key!r} (--metadata-key)", where=where)
            if not isinstance(metadata, dict):
                raise PromptDataError(f"{where}: {metadata_key!r} (--metadata-key) must be a JSON object, got {type(metadata).__name__}")
            metadata = dict(metadata)
        tools = None
        if tool_key and row.get(tool_key) is not None:
            tools = _parse_json_field(row[tool_key], what=f"{tool_key!r} (--tool-key)", where=where)
            metadata["tools"] = tools

        if apply_chat_template:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            prompt = render_chat_template(tokenizer, messages, tools=tools, extra_kwargs=template_kwargs)
        if max_prompt_len is not None:
            length = len(encode_prompt(tokenizer, prompt, tools=tools, extra_kwargs=template_kwargs))
            if length > max_prompt_len:
                dropped["prompt_too_long"] += 1
                continue
        records.append(PromptRecord(prompt=prompt, label=label, metadata=metadata, line_number=line_number))

    if dropped:
        logger.warning(
            "%s: dropped %s of %d prompts (%s); --rollout-max-prompt-len is %s",
            file_path, sum(dropped.values()), len(rows), ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())),
            max_prompt_len,
        )
    if not records:
        raise PromptDataError(
            f"{path}: no usable prompt is left out of {len(rows)} rows (dropped: {dict(dropped)}); "
            "raise --rollout-max-prompt-len or check the file"
        )
    return PromptDataset(path=path, records=records, dropped=dropped)


def prompt_dataset_from_args(args: Any, path: str | None = None) -> PromptDataset:
    """Read ``path`` (default ``--prompt-data``) with the data flags of ``args``."""
    path = path if path is not None else getattr(args, "prompt_data", None)
    if not path:
        raise PromptDataError("--prompt-data is not set: the jsonl data source needs a JSON-lines prompt file")
    return read_prompt_dataset(
        path,
        input_key=args.input_key,
        label_key=getattr(args, "label_key", None),
        metadata_key=getattr(args, "metadata_key", None),
        tool_key=getattr(args, "tool_key", None),
        apply_chat_template=bool(getattr(args, "apply_chat_template", False)),
        template_kwargs=chat_template_kwargs(args),
        max_prompt_len=getattr(args, "rollout_max_prompt_len", None),  # config derives it from the context length
        tokenizer_path=getattr(args, "hf_checkpoint", None),
    )
