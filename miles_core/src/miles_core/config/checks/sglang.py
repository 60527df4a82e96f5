"""SGLang and router: passthrough flags Miles controls, router address, engine settings implied by modes."""

from __future__ import annotations

import argparse

from miles_core.config.errors import ConfigError
from miles_core.config.passthrough import check_reserved_passthrough


def check_sglang(args: argparse.Namespace, passed: set[str]) -> None:
    server = args.sglang_server_args
    check_reserved_passthrough(server, args.router_args)
    for name in ("tp-size", "tensor-parallel-size", "tp_size"):
        if name in server and str(server[name]) != str(args.rollout_num_gpus_per_engine):
            raise ConfigError(
                f"--sglang-{name} {server[name]} differs from --rollout-num-gpus-per-engine "
                f"{args.rollout_num_gpus_per_engine}; set the engine size with --rollout-num-gpus-per-engine only"
            )
    if (args.sglang_router_ip is None) != (args.sglang_router_port is None):
        raise ConfigError("--sglang-router-ip and --sglang-router-port name an external router together; pass both "
                          "(or neither, and Miles starts its own router)")
    if args.colocate and "enforce-piecewise-cuda-graph" not in server:
        # Miles: colocated engines release and re-take GPU memory, which piecewise CUDA graphs do not survive.
        server.setdefault("disable-piecewise-cuda-graph", True)
    if args.true_on_policy_mode:
        server.setdefault("enable-deterministic-inference", True)
