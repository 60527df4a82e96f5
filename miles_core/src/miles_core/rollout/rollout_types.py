"""The inputs and outputs of a rollout function (Miles's class-based rollout API).

A rollout function is built once per run with :class:`RolloutFnConstructorInput` and then called with
:class:`RolloutFnTrainInput` (a training rollout) or :class:`RolloutFnEvalInput` (an evaluation); it
answers :class:`RolloutFnTrainOutput` or :class:`RolloutFnEvalOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from miles_core.data.sample import Sample

__all__ = ["RolloutFnConstructorInput", "RolloutFnTrainInput", "RolloutFnEvalInput", "RolloutFnTrainOutput",
           "RolloutFnEvalOutput"]


@dataclass
class RolloutFnConstructorInput:
    """What a rollout function is built from: the flags, the data source and the plugin manager."""

    args: Any
    data_source: Any
    plugin_manager: Any = None


@dataclass
class RolloutFnTrainInput:
    """One training rollout: its id and the engines' current weight version."""

    rollout_id: int
    weight_version: str | None = None


@dataclass
class RolloutFnEvalInput:
    """One evaluation, after rollout ``rollout_id``."""

    rollout_id: int
    weight_version: str | None = None


@dataclass
class RolloutFnTrainOutput:
    """Groups of samples to train on (``--rollout-batch-size`` of them when enough survived) and metrics."""

    samples: list[list[Sample]]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RolloutFnEvalOutput:
    """Per eval dataset ``{"rewards": [...], "truncated": [...], "samples": [...]}``, and metrics."""

    data: dict[str, dict[str, Any]]
    metrics: dict[str, float] = field(default_factory=dict)
