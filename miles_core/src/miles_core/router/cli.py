"""Command line of the router (``miles router`` and ``python -m miles_core.router``).

Flag names follow SGLang's router (sgl-router) where both have one, so ``--router-<flag>`` passthrough
in ``miles train`` (``args.router_args``) reaches this router unchanged.
"""

from __future__ import annotations

import argparse
import logging
import sys

from miles_core.router.pool import POLICIES

DEFAULT_PORT = 30000


def add_router_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    parser.add_argument("--worker-urls", nargs="*", default=[], metavar="URL",
                        help="Workers to start with (more can join with POST /add_worker).")
    parser.add_argument("--policy", choices=POLICIES, default="least_in_flight",
                        help="How a worker is chosen for each request.")
    parser.add_argument("--health-check-interval-secs", type=float, default=30.0,
                        help="Seconds between health checks of every worker.")
    parser.add_argument("--health-check-timeout-secs", type=float, default=5.0,
                        help="A health check slower than this fails.")
    parser.add_argument("--health-check-first-wait-secs", type=float, default=0.0,
                        help="Seconds before the first health check.")
    parser.add_argument("--health-check-endpoint", default="/health", help="Path checked on each worker.")
    parser.add_argument("--health-failure-threshold", type=int, default=3,
                        help="Consecutive failed checks that evict a worker.")
    parser.add_argument("--health-success-threshold", type=int, default=1,
                        help="Consecutive passed checks that re-admit an evicted worker.")
    parser.add_argument("--request-timeout-secs", type=float, default=None,
                        help="Give up on a worker's answer after this long (None: never, generations can be long).")
    parser.add_argument("--connect-timeout-secs", type=float, default=5.0,
                        help="Connecting to a worker slower than this counts as unreachable.")
    parser.add_argument("--max-connections", type=int, default=1024,
                        help="Most concurrent connections to all workers.")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_router_arguments(argparse.ArgumentParser(
        prog="miles router", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Route SGLang API requests to healthy engines (least in-flight)."))


def config_from_args(args: argparse.Namespace):
    from miles_core.router.app import RouterConfig

    return RouterConfig(
        worker_urls=list(args.worker_urls), policy=args.policy,
        health_check_interval=args.health_check_interval_secs, health_check_timeout=args.health_check_timeout_secs,
        health_check_first_wait=args.health_check_first_wait_secs, health_check_endpoint=args.health_check_endpoint,
        failure_threshold=args.health_failure_threshold, success_threshold=args.health_success_threshold,
        request_timeout=args.request_timeout_secs, connect_timeout=args.connect_timeout_secs,
        max_connections=args.max_connections,
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from miles_core.router.app import create_router_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per proxied request is noise
    app = create_router_app(config_from_args(args))
    logging.getLogger(__name__).info("router on http://%s:%d, policy %s, workers %s", args.host, args.port,
                                     args.policy, args.worker_urls or "none yet")
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                                  timeout_keep_alive=30)).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
