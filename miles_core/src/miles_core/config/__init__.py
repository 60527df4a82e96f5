"""Flags of ``miles train``: definitions, passthrough, validation and component selection.

The training loop calls :func:`parse_and_validate` once; everything here is import-light (no torch,
Ray or transformers), so ``miles --help`` stays fast.
"""

from miles_core.config.arguments import build_train_parser
from miles_core.config.batch_knobs import KnobResolution, resolve_batch_knobs
from miles_core.config.errors import ConfigError
from miles_core.config.parse import parse_and_validate
from miles_core.config.selection import Selection, active_loggers

__all__ = [
    "ConfigError",
    "KnobResolution",
    "Selection",
    "active_loggers",
    "build_train_parser",
    "parse_and_validate",
    "resolve_batch_knobs",
]
