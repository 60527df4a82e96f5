"""``Sample``: one response to one prompt, the unit that flows from rollout to training.

Samples of one prompt travel together as a *group* of ``--n-samples-per-prompt`` samples
(``list[Sample]``); a rollout batch is ``list[list[Sample]]``. Field names follow Miles's ``Sample``
so custom functions written for Miles read and write the same attributes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Sample", "SampleStatus", "flatten_groups"]


class SampleStatus(str, enum.Enum):
    """Lifecycle of a sample; set from SGLang's ``meta_info.finish_reason.type``."""

    PENDING = "pending"
    COMPLETED = "completed"  # finish_reason "stop"
    TRUNCATED = "truncated"  # finish_reason "length"
    ABORTED = "aborted"  # finish_reason "abort", or the rollout was cut short
    FAILED = "failed"  # generation or reward raised; the reason is in metadata["error"]

    @classmethod
    def from_finish_reason(cls, finish_reason: str | dict | None) -> SampleStatus:
        kind = finish_reason.get("type") if isinstance(finish_reason, dict) else finish_reason
        return {"stop": cls.COMPLETED, "length": cls.TRUNCATED, "abort": cls.ABORTED}.get(kind or "", cls.COMPLETED)


@dataclass
class Sample:
    """One response. Mutable: generate, reward and filter steps fill it in as it travels."""

    index: int | None = None
    group_index: int | None = None
    prompt: str | list[dict[str, Any]] = ""
    tokens: list[int] = field(default_factory=list)  # prompt + response token ids
    response: str = ""
    response_length: int = 0
    label: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reward: float | dict[str, Any] | None = None
    rollout_log_probs: list[float] | None = None
    loss_mask: list[int] | None = None  # len == response_length; None means all ones
    status: SampleStatus = SampleStatus.PENDING
    remove_sample: bool = False
    teacher_log_probs: list[float] | None = None
    weight_versions: list[str] = field(default_factory=list)
    rollout_id: int | None = None

    Status = SampleStatus  # Miles spells it Sample.Status.PENDING

    @property
    def prompt_length(self) -> int:
        return len(self.tokens) - self.response_length

    @property
    def effective_response_length(self) -> int:
        """Number of trainable response tokens (the loss mask's sum)."""
        return self.response_length if self.loss_mask is None else int(sum(self.loss_mask))

    def get_reward_value(self, args: Any = None, reward_key: str | None = None) -> float:
        """The scalar reward: a dict reward is resolved with ``--reward-key`` (or ``reward_key``)."""
        if isinstance(self.reward, dict):
            key = reward_key or getattr(args, "reward_key", None)
            if not key:
                raise ValueError(
                    f"sample {self.index}: the reward is a dict {sorted(self.reward)}; set --reward-key to pick one"
                )
            return float(self.reward[key])
        if self.reward is None:
            raise ValueError(f"sample {self.index} has no reward (status {self.status.value})")
        return float(self.reward)

    def validate(self) -> None:
        """Check the length invariants between tokens, masks and log-probs; raise ``ValueError``."""
        if self.response_length > len(self.tokens):
            raise ValueError(f"sample {self.index}: response_length {self.response_length} > len(tokens) {len(self.tokens)}")
        for name in ("loss_mask", "rollout_log_probs", "teacher_log_probs"):
            value = getattr(self, name)
            if value is not None and len(value) != self.response_length:
                raise ValueError(
                    f"sample {self.index}: len({name})={len(value)} but response_length={self.response_length}"
                )

    def reset_for_retry(self) -> None:
        """Forget every generated output so the sample can be generated again (status ABORTED)."""
        self.tokens = self.tokens[: self.prompt_length] if self.response_length else self.tokens
        self.response, self.response_length = "", 0
        self.reward = None
        self.rollout_log_probs = None
        self.loss_mask = None
        self.teacher_log_probs = None
        self.status = SampleStatus.ABORTED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (status as its string value)."""
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Sample field(s) {unknown}; known fields are {sorted(known)}")
        values = dict(data)
        if "status" in values:
            values["status"] = SampleStatus(values["status"])
        return cls(**values)


def flatten_groups(samples: Iterable[Any]) -> list[Sample]:
    """The samples of a group or a batch, in order, flattening nested lists and tuples at any depth.

    A rollout batch is ``list[list[Sample]]``, and a generate function may return several samples for
    one prompt (a multi-turn episode), so a "group" can itself hold lists.
    """
    flat: list[Sample] = []
    for item in samples:
        if isinstance(item, (list, tuple)):
            flat.extend(flatten_groups(item))
        else:
            flat.append(item)
    return flat
