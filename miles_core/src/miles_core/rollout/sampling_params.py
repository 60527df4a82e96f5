"""The SGLang sampling parameters of a rollout, from the flags (Miles's ``compute_sampling_params``).

Train rollouts use ``--rollout-*``; eval rollouts use ``--eval-temperature/top-p/top-k/max-response-len``
where set and inherit the rollout value otherwise. ``sampling_seed`` is per sample
(:func:`sample_seed`), so a fixed ``--rollout-seed`` reproduces the same samples.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["default_sampling_params", "max_context_len", "sample_seed"]


def _pick(args: Any, eval_dest: str, rollout_dest: str, evaluation: bool) -> Any:
    if evaluation:
        value = getattr(args, eval_dest, None)
        if value is not None:
            return value
    return getattr(args, rollout_dest, None)


def default_sampling_params(args: Any, *, evaluation: bool = False) -> dict[str, Any]:
    """The request's ``sampling_params`` before per-sample changes (seed, remaining length)."""
    params: dict[str, Any] = {
        "temperature": _pick(args, "eval_temperature", "rollout_temperature", evaluation),
        "top_p": _pick(args, "eval_top_p", "rollout_top_p", evaluation),
        "top_k": _pick(args, "eval_top_k", "rollout_top_k", evaluation),
        "max_new_tokens": _pick(args, "eval_max_response_len", "rollout_max_response_len", evaluation),
        "stop": getattr(args, "rollout_stop", None),
        "stop_token_ids": getattr(args, "rollout_stop_token_ids", None),
        "skip_special_tokens": bool(getattr(args, "rollout_skip_special_tokens", False)),
        "no_stop_trim": True,
        "spaces_between_special_tokens": False,
    }
    if params["temperature"] is None:
        params["temperature"] = 1.0
    if params["top_p"] is None:
        params["top_p"] = 1.0
    if params["top_k"] is None:
        params["top_k"] = -1
    return {key: value for key, value in params.items() if value is not None}


def max_context_len(args: Any, *, evaluation: bool = False) -> int | None:
    """The prompt+response token budget (``--rollout-max-context-len``; eval may have its own)."""
    return _pick(args, "eval_max_context_len", "rollout_max_context_len", evaluation)


def sample_seed(rollout_seed: int, sample_index: int | None, *, salt: str = "") -> int:
    """A 31-bit seed from the rollout seed and the sample's global index (stable across processes)."""
    digest = hashlib.sha256(f"{rollout_seed}:{salt}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
