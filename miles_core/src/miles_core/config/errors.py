"""The one exception type for a bad command line, so the CLI can print it as ``miles: error: …``."""

from __future__ import annotations


class ConfigError(ValueError):
    """A flag (or combination of flags) the user must change; the message names the flags and the fix.

    Raised by parsing, validation and component selection before any process starts. The ``miles`` CLI
    prints it as one line ``miles: error: <message>`` and exits with status 2.
    """
