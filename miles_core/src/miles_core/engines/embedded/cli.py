"""Command line of one embedded engine server (``miles engine`` and ``python -m miles_core.engines.embedded``)."""

from __future__ import annotations

import argparse
import logging
import sys

DEFAULT_PORT = 30000


def add_engine_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The server's flags (names follow SGLang's ``launch_server`` where both have one)."""
    parser.add_argument("--hf-checkpoint", "--model-path", dest="hf_checkpoint", required=True,
                        help="HF checkpoint directory (config, weights, tokenizer).")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N.")
    parser.add_argument("--dtype", default="auto",
                        help="auto (float32 on CPU, the checkpoint's half precision on GPU), float32, bfloat16, float16.")
    parser.add_argument("--random-seed", type=int, default=None,
                        help="Seeds requests that give no sampling_seed (with a request counter). Default: random.")
    parser.add_argument("--max-batch-size", type=int, default=64, help="Most sequences decoded together.")
    parser.add_argument("--max-prefill-tokens", type=int, default=16384,
                        help="Most (padded) prompt tokens prefilled in one forward pass.")
    parser.add_argument("--served-model-name", default=None, help="Model name of the /v1 API (None: the checkpoint path).")
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (None: torch's default).")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_engine_arguments(argparse.ArgumentParser(
        prog="miles engine", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve a transformers causal LM behind SGLang's HTTP API."))


def run(args: argparse.Namespace) -> int:
    """Load the model, then serve until SIGINT/SIGTERM."""
    import torch
    import uvicorn

    from miles_core.engines.embedded.engine import EmbeddedEngine
    from miles_core.engines.embedded.server import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per proxied request is noise
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    engine = EmbeddedEngine(args.hf_checkpoint, device=args.device, dtype=args.dtype,
                            max_batch_size=args.max_batch_size, max_prefill_tokens=args.max_prefill_tokens,
                            random_seed=args.random_seed, served_model_name=args.served_model_name)
    engine.start()
    server_args = {k: v for k, v in vars(args).items() if k != "func"}
    app = create_app(engine, server_args)
    logging.getLogger(__name__).info("embedded engine serving %s on http://%s:%d (device %s, dtype %s)",
                                     args.hf_checkpoint, args.host, args.port, engine.runner.device,
                                     str(engine.runner.dtype).removeprefix("torch."))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            timeout_keep_alive=30)
    try:
        uvicorn.Server(config).run()
    finally:
        engine.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
