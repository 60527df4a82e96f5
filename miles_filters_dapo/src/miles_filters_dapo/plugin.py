"""Entry point of miles-filters-dapo: the hook implementations it registers with Miles."""

from miles_core import hookimpl  # noqa: F401
