"""Entry point of miles-models-qwen: the hook implementations it registers with Miles."""

from miles_core import hookimpl  # noqa: F401
