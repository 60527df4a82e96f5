"""``--sglang-*`` and ``--router-*`` passthrough: flags of SGLang and the router, taken verbatim.

Miles accepts every ``python -m sglang.launch_server`` flag with the prefix ``--sglang-``. SGLang is not
importable on every machine (and its parser is large), so instead of copying SGLang's parser we take
every ``--sglang-<name>`` that is not a Miles flag and keep it as ``args.sglang_server_args[name]``:

- ``--sglang-mem-fraction-static 0.8`` and ``--sglang-mem-fraction-static=0.8`` → ``"0.8"``;
- a bare ``--sglang-enable-dp-attention`` (followed by another flag or nothing) → ``True``;
- several values (``--sglang-cuda-graph-bs 1 2 4``) → ``["1", "2", "4"]``.

The engine passes them on as ``--<name> <value>``; SGLang itself rejects a misspelt one when it starts.
``--router-*`` works the same into ``args.router_args``. The real Miles flags that share the prefix
(``--sglang-router-ip``, ``--sglang-router-port``, ``--sglang-server-concurrency``) are left to argparse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from miles_core.config.errors import ConfigError

__all__ = ["PASSTHROUGH_PREFIXES", "split_passthrough", "check_reserved_passthrough"]

PassthroughValue = str | bool | list[str]

#: prefix → the dest the collected dict is stored under.
PASSTHROUGH_PREFIXES: dict[str, str] = {"--sglang-": "sglang_server_args", "--router-": "router_args"}

_NUMBER = re.compile(r"^-\d+(\.\d*)?([eE][-+]?\d+)?$|^-\.\d+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: SGLang server flags that Miles sets itself, with the Miles flag that controls each.
RESERVED_SGLANG: dict[str, str] = {
    "model-path": "--hf-checkpoint",
    "tokenizer-path": "--hf-checkpoint",
    "host": "Miles (engines listen on the address Miles gives them)",
    "port": "Miles (each engine gets a free port)",
    "nccl-port": "Miles (each engine gets a free port)",
    "random-seed": "--rollout-seed",
    "nnodes": "--rollout-num-gpus / --rollout-num-gpus-per-engine",
    "node-rank": "--rollout-num-gpus / --rollout-num-gpus-per-engine",
    "dist-init-addr": "Miles (engine processes are placed by Ray)",
    "base-gpu-id": "Miles (engine processes are placed by Ray)",
    "gpu-id-step": "Miles (engine processes are placed by Ray)",
    "enable-memory-saver": "--offload-rollout",
    "skip-server-warmup": "Miles",
    "trust-remote-code": "Miles (always on for the engine)",
}
#: Router flags Miles sets itself.
RESERVED_ROUTER: dict[str, str] = {
    "host": "--sglang-router-ip (for an external router)",
    "port": "--sglang-router-port (for an external router)",
}


def _looks_like_option(token: str) -> bool:
    return token.startswith("-") and not _NUMBER.match(token) and token != "-"


def split_passthrough(
    argv: Iterable[str], known_options: Iterable[str]
) -> tuple[list[str], dict[str, dict[str, PassthroughValue]]]:
    """Split ``argv`` into (the tokens for argparse, ``{dest: {name: value}}`` for each passthrough prefix).

    ``known_options`` are the parser's option strings: a token that is one of them is never passthrough.
    Everything after a literal ``--`` is left to argparse.
    """
    known = set(known_options)
    tokens = list(argv)
    remaining: list[str] = []
    collected: dict[str, dict[str, PassthroughValue]] = {dest: {} for dest in PASSTHROUGH_PREFIXES.values()}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            remaining.extend(tokens[i:])
            break
        option, has_value, inline_value = token.partition("=")
        prefix = next((p for p in PASSTHROUGH_PREFIXES if option.startswith(p)), None)
        if prefix is None or option in known:
            remaining.append(token)
            i += 1
            continue
        name = option[len(prefix):]
        if not _NAME.match(name):
            raise ConfigError(f"{option}: expected {prefix}<flag>, e.g. {prefix}log-level")
        i += 1
        value: PassthroughValue
        if has_value:
            value = inline_value
        else:
            values: list[str] = []
            while i < len(tokens) and not _looks_like_option(tokens[i]):
                values.append(tokens[i])
                i += 1
            value = True if not values else values[0] if len(values) == 1 else values
        collected[PASSTHROUGH_PREFIXES[prefix]][name] = value
    return remaining, collected


def check_reserved_passthrough(sglang_server_args: dict, router_args: dict) -> None:
    """Reject passthrough flags that Miles sets itself, naming the Miles flag to use instead."""
    for name in sglang_server_args:
        if name in RESERVED_SGLANG:
            raise ConfigError(f"--sglang-{name} is set by Miles; use {RESERVED_SGLANG[name]} instead")
    for name in router_args:
        if name in RESERVED_ROUTER:
            raise ConfigError(f"--router-{name} is set by Miles; use {RESERVED_ROUTER[name]} instead")
