"""What a generate function receives: :class:`GenerateFnInput` and the shared :class:`GenerateState`.

The state is built once per rollout call (its HTTP client and semaphore belong to that call's event
loop): the router URL, one shared HTTP client (``http_client.RolloutHttpClient``), a semaphore bounding in-flight requests to
``--sglang-server-concurrency`` × the number of engines, the default sampling parameters, and the
``aborted`` flag the rollout raises once it has enough groups.

:func:`call_generate_fn` calls a generate function in either form Miles accepts: the class-based
``generate(input: GenerateFnInput)`` or the legacy ``generate(args, sample, sampling_params[, evaluation])``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from miles_core.data.sample import Sample
from miles_core.rollout.sampling_params import default_sampling_params

__all__ = ["GenerateState", "GenerateFnInput", "GenerateFnOutput", "call_generate_fn", "router_url_from_args",
           "num_engines", "concurrency_limit"]


def router_url_from_args(args: Any) -> str:
    """``http://{--sglang-router-ip}:{--sglang-router-port}``; an error naming both flags when unset."""
    ip, port = getattr(args, "sglang_router_ip", None), getattr(args, "sglang_router_port", None)
    if not ip or not port:
        raise ValueError("the router address is unknown: --sglang-router-ip and --sglang-router-port must be set "
                         "(the rollout manager sets them when it starts the router)")
    host = f"[{ip}]" if ":" in str(ip) and not str(ip).startswith("[") else ip
    return f"http://{host}:{port}"


def num_engines(args: Any) -> int:
    """How many engines serve the rollout: ``--rollout-num-gpus // --rollout-num-gpus-per-engine`` (at least 1)."""
    explicit = getattr(args, "rollout_num_engines", None)
    if explicit:
        return int(explicit)
    gpus = getattr(args, "rollout_num_gpus", None) or 0
    per_engine = getattr(args, "rollout_num_gpus_per_engine", None) or 1
    return max(1, int(gpus) // int(per_engine))


def concurrency_limit(args: Any) -> int:
    """In-flight generate requests: ``--sglang-server-concurrency`` per engine × engines."""
    return int(getattr(args, "sglang_server_concurrency", None) or 512) * num_engines(args)


@dataclass
class GenerateState:
    """Per-rollout resources shared by every generate call (see the module docstring)."""

    args: Any
    tokenizer: Any
    router_url: str
    client: Any  # RolloutHttpClient by default; an httpx.AsyncClient works too
    semaphore: asyncio.Semaphore
    sampling_params: dict[str, Any]
    aborted: bool = False
    extras: dict[str, Any] = field(default_factory=dict)  # room for custom generate functions' own state

    @classmethod
    def create(cls, args: Any, *, tokenizer: Any, router_url: str | None = None, client: Any | None = None,
               evaluation: bool = False) -> GenerateState:
        """Build the state inside the running event loop (the client and semaphore bind to it)."""
        if client is None:
            from miles_core.rollout.http_client import RolloutHttpClient

            client = RolloutHttpClient(max_connections=concurrency_limit(args), connect_timeout=30.0)
        return cls(
            args=args,
            tokenizer=tokenizer,
            router_url=router_url or router_url_from_args(args),
            client=client,
            semaphore=asyncio.Semaphore(concurrency_limit(args)),
            sampling_params=default_sampling_params(args, evaluation=evaluation),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class GenerateFnInput:
    """One generate call: the sample to fill in and the sampling parameters to use for it."""

    args: Any
    state: GenerateState
    sample: Sample
    sampling_params: dict[str, Any]
    evaluation: bool = False


@dataclass
class GenerateFnOutput:
    """Optional richer return value of a generate function (Miles's class-based API)."""

    samples: Sample | list[Sample]


def _is_legacy_generate(fn: Callable[..., Any]) -> bool:
    """Miles's rule: three or more parameters and the first is not named ``input``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) >= 3 and params[0].name != "input"


async def call_generate_fn(fn: Callable[..., Any], fn_input: GenerateFnInput) -> list[Sample]:
    """Call ``fn`` in whichever form it has; always answer a list of samples."""
    if _is_legacy_generate(fn):
        params = inspect.signature(fn).parameters
        kwargs = {"evaluation": fn_input.evaluation} if "evaluation" in params or any(
            p.kind is p.VAR_KEYWORD for p in params.values()) else {}
        result = fn(fn_input.args, fn_input.sample, fn_input.sampling_params, **kwargs)
    else:
        result = fn(fn_input)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, GenerateFnOutput) or (hasattr(result, "samples") and not isinstance(result, (Sample, list))):
        result = result.samples
    if isinstance(result, Sample):
        return [result]
    if isinstance(result, list) and result and all(isinstance(s, Sample) for s in result):
        return result
    raise TypeError(
        f"generate function {getattr(fn, '__qualname__', fn)!r} returned {type(result).__name__}; "
        "it must return the Sample (or a non-empty list of Samples)"
    )
