"""The embedded rollout engine: a transformers model behind SGLang's HTTP API, with continuous batching.

Run one with ``miles engine --hf-checkpoint DIR`` (or ``python -m miles_core.engines.embedded``); start one
from Python with :func:`miles_core.engines.local.start_engine`. Importing this package is cheap: torch,
transformers and FastAPI are imported by the modules that need them.
"""
