"""The ``miles router`` command (an entry point: imports nothing heavy).

Router settings in ``miles train`` come from the fault-tolerance flags (``--rollout-health-check-*``) and
the ``--router-*`` passthrough, whose names are this command's flags (see ``miles router --help``).
"""

from __future__ import annotations

import argparse

from miles_core import hookimpl


@hookimpl
def miles_register_commands(subparsers) -> None:
    from miles_core.router.cli import add_router_arguments

    parser = subparsers.add_parser("router", help="Run the router in front of SGLang-compatible engines",
                                   description="Route SGLang API requests to healthy engines (least in-flight), "
                                               "with health checks that evict and re-admit workers.")
    add_router_arguments(parser)
    parser.set_defaults(func=_run_router)


def _run_router(args: argparse.Namespace) -> int:
    from miles_core.router.cli import run

    return run(args)
