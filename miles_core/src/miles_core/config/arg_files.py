"""``@FILE`` arguments: flags kept in a file, as launch scripts keep them in shell arrays.

``miles train @examples/demo.args --num-rollout 3`` reads the file's whitespace-separated words (shell
quoting rules, ``#`` comments), so one file per argument group (MODEL_ARGS, ROLLOUT_ARGS, …) can be
combined on one command line; later flags win. Files may name other files.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from miles_core.config.errors import ConfigError

__all__ = ["expand_arg_files"]

_MAX_DEPTH = 8


def expand_arg_files(argv: list[str], _depth: int = 0) -> list[str]:
    """Replace each ``@PATH`` token by the words of that file (recursively)."""
    expanded: list[str] = []
    for token in argv:
        if not token.startswith("@") or len(token) == 1:
            expanded.append(token)
            continue
        if _depth >= _MAX_DEPTH:
            raise ConfigError(f"{token}: @files nest more than {_MAX_DEPTH} deep (does a file include itself?)")
        path = Path(token[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{token}: no such arguments file ({path.resolve()})") from None
        except OSError as exc:
            raise ConfigError(f"{token}: cannot read arguments file: {exc}") from None
        try:
            words = shlex.split(text, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{token}: cannot split into arguments: {exc}") from None
        expanded.extend(expand_arg_files(words, _depth + 1))
    return expanded
