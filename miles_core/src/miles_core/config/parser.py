"""The argparse parser class and help formatter shared by every ``miles`` command.

Two things differ from plain argparse:

- errors raise :class:`~miles_core.config.errors.ConfigError` instead of printing usage and exiting, so
  the CLI reports every problem the same way (``miles: error: …``, exit 2) and library callers of
  ``parse_and_validate`` get an exception they can catch; an unknown flag gets a "did you mean" hint;
- ``--help`` shows each flag's default after its help text (``(default: 1e-06)``), except for unset
  (``None``) defaults, whose help text says how the value is derived, and off-by-default switches.
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from typing import Any

from miles_core.config.errors import ConfigError

__all__ = ["MilesArgumentParser", "MilesHelpFormatter", "format_default"]


def format_default(value: Any) -> str:
    """How a default is written in ``--help`` (lists space-separated, as they are typed)."""
    if isinstance(value, (list, tuple)):
        return " ".join(format_default(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{}" if not value else repr(value)
    return str(value)


class MilesHelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` for flags with a meaningful default; wraps text without splitting flag names."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 36, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, width or 110)

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # Descriptions keep their paragraphs (one per line in the source); each paragraph is wrapped.
        # Indented lines (examples) are kept verbatim.
        return "\n".join(
            indent + line if line[:1].isspace() else
            textwrap.fill(" ".join(line.split()), width, initial_indent=indent, subsequent_indent=indent,
                          break_on_hyphens=False, break_long_words=False)
            for line in text.splitlines()
        )

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "%(default)" in help_text or action.default is argparse.SUPPRESS or action.default is None:
            return help_text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
                               argparse._VersionAction, argparse._StoreConstAction, argparse._CountAction)):
            return help_text
        if isinstance(action, argparse._AppendAction) and not action.default:
            return help_text
        if not action.option_strings:
            return help_text
        return f"{help_text} (default: {format_default(action.default).replace('%', '%%')})"


class MilesArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are exceptions that name the flag and suggest the right one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", MilesHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # a typo must not silently select a longer flag
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(self._with_suggestion(message) + f" (see '{self.prog} --help')")

    def _with_suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.6)
            return message + (f"; did you mean {close[0]!r}?" if close else "")
        match = re.match(r"unrecognized arguments: (.*)", message)
        if not match:
            return message
        known = [s for s in self._option_string_actions if s.startswith("--")]
        hints = []
        for token in match.group(1).split():
            if not token.startswith("--"):
                continue
            close = difflib.get_close_matches(token.split("=", 1)[0], known, n=1, cutoff=0.75)
            if close:
                hints.append(f"{token.split('=', 1)[0]} → did you mean {close[0]}?")
        return message + (f" ({'; '.join(hints)})" if hints else "")
