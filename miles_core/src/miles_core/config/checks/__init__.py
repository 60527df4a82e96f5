"""Cross-flag checks and derived defaults, one module per concern, run in order by ``validate.py``.

Every check takes the parsed namespace and the set of dests the user passed explicitly, completes
derived defaults in place, and raises :class:`~miles_core.config.errors.ConfigError` naming the flags
and the fix. Nothing here starts a process or imports torch.
"""
