"""Entry point of miles-rm-math: the hook implementations it registers with Miles."""

from miles_core import hookimpl  # noqa: F401
