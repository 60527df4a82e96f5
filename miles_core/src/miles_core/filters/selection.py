"""Which filter function runs at each of the three stages, from the flags.

A ``--*-path`` flag (Miles's spelling) wins over a name; a name is looked up in the ``filters``
registry and must belong to the stage it was given for, so ``--buffer-filter check_no_aborted`` is a
clear error instead of a crash deep in the rollout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from miles_core.plugins.path_flags import flag_name, load_path_flag
from miles_core.plugins.types import FilterStage

__all__ = ["STAGE_FLAGS", "resolve_filter"]

#: stage → (name flag dest, path flag dest)
STAGE_FLAGS: dict[str, tuple[str, str]] = {
    "dynamic_sampling": ("dynamic_sampling_filter", "dynamic_sampling_filter_path"),
    "buffer": ("buffer_filter", "buffer_filter_path"),
    "sample": ("rollout_sample_filter", "rollout_sample_filter_path"),
}


def resolve_filter(args: Any, plugin_manager: Any, stage: FilterStage) -> Callable[..., Any] | None:
    """The function selected for ``stage``, or ``None`` when no filter is selected for it."""
    name_dest, path_dest = STAGE_FLAGS[stage]
    custom = load_path_flag(args, path_dest)
    if custom is not None:
        return custom
    name = getattr(args, name_dest, None)
    if not name:
        return None
    spec = plugin_manager.get("filters", name, flag=flag_name(name_dest))
    if spec.stage != stage:
        others = [s.name for s in plugin_manager.registry("filters") if s.stage == stage]
        raise ValueError(
            f"{flag_name(name_dest)} {name!r} is a {spec.stage!r} filter, not a {stage!r} one. "
            f"Filters for this stage: {', '.join(sorted(others)) or 'none'}."
        )
    return spec.fn
