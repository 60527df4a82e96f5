"""Rollout engines: servers speaking SGLang's HTTP API, and the code that starts and calls them.

- ``plugin``: the built-in ``embedded`` and ``sglang`` engine specs and the ``miles engine`` command;
- ``embedded/``: the transformers-backed, continuously batching engine;
- ``sglang_server``: the ``python -m sglang.launch_server`` command line;
- ``client``: :class:`~miles_core.engines.client.EngineClient`, async calls to any such server;
- ``local``: :func:`~miles_core.engines.local.start_engine` and friends (local processes);
- ``weight_group``: the process group trainer and engines share for broadcast weight updates.

Importing this package is cheap (no torch, transformers or FastAPI).
"""
