"""Errors of the HF<->Megatron weight mapping; each message names the offending parameter."""

from __future__ import annotations

__all__ = ["UnknownParameterError", "IncompleteParameterError"]


class UnknownParameterError(ValueError):
    """A parameter name the architecture does not have (a typo, another model, a feature it lacks)."""


class IncompleteParameterError(ValueError):
    """The input ended while a fused tensor (q/k/v, gate/up) still lacked a part."""
