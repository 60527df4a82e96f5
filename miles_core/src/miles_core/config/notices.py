"""Warnings about flags that are accepted but have no effect (``miles: warning: …`` on the CLI)."""

from __future__ import annotations

import warnings

__all__ = ["ConfigWarning", "warn"]


class ConfigWarning(UserWarning):
    """A flag combination that works but is probably not what the user meant."""


def warn(message: str) -> None:
    warnings.warn(message, ConfigWarning, stacklevel=3)
