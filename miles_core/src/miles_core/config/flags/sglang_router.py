"""SGLang and router: the rollout engine, the router in front of it, and the passthrough flags.

Any other ``--sglang-<flag>`` is passed to every SGLang server as ``--<flag>`` (collected in
``args.sglang_server_args``) and any ``--router-<flag>`` to the router (``args.router_args``); see
:mod:`miles_core.config.passthrough`.
"""

from __future__ import annotations

import argparse

from miles_core.config.value_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "SGLang and router",
        "Passthrough: any flag of 'python -m sglang.launch_server' works with the prefix --sglang- "
        "(e.g. --sglang-mem-fraction-static 0.8, --sglang-enable-dp-attention), and any router flag with "
        "--router- . They are collected in args.sglang_server_args and args.router_args.",
    )
    group.add_argument("--rollout-engine", default="auto", metavar="NAME",
                       help="Engine plugin serving SGLang's HTTP API: 'sglang' (real SGLang servers) or 'embedded' "
                            "(transformers behind the same API, for CPUs and CI). 'auto': sglang where it can run, "
                            "else embedded.")
    group.add_argument("--sglang-router-ip", default=None, metavar="IP",
                       help="External router IP. Miles starts its own router when unset.")
    group.add_argument("--sglang-router-port", type=positive_int, default=None, metavar="PORT",
                       help="External router port (with --sglang-router-ip).")
    group.add_argument("--sglang-server-concurrency", type=positive_int, default=512, metavar="N",
                       help="Max in-flight generate requests per engine.")
    group.add_argument("--update-weights-interval", type=positive_int, default=1, metavar="N",
                       help="Push the actor's weights to the engines every N rollouts.")
    group.add_argument("--update-weight-buffer-size", type=positive_int, default=536870912, metavar="BYTES",
                       help="Bucket size of one weight-update transfer.")
    group.add_argument("--update-weight-transfer-mode", choices=("auto", "tensor", "distributed", "disk"),
                       default="auto",
                       help="How weights reach the engines: tensor (in memory, colocated), distributed "
                            "(a broadcast group), disk (a checkpoint directory). auto: tensor when colocated, "
                            "else distributed where it works, else disk.")
