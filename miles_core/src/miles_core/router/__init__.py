"""The router in front of the rollout engines: worker registry, health checks, least-in-flight proxying.

Run it with ``miles router`` (or ``python -m miles_core.router``); start one from Python with
:func:`miles_core.router.local.start_router`. Importing this package is cheap.
"""
