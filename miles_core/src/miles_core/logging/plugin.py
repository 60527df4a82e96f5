"""Built-in loggers (stdout, jsonl, wandb, tensorboard) and the ``miles plot`` command."""

from __future__ import annotations

from typing import Any

from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import LoggerSpec


def _stdout(args: Any):
    from miles_core.logging.stdout_logger import StdoutLogger

    return StdoutLogger(args)


def _jsonl(args: Any):
    from miles_core.logging.jsonl_logger import JsonlLogger

    return JsonlLogger(args)


def _wandb(args: Any):
    from miles_core.logging.wandb_logger import WandbLogger

    return WandbLogger(args)


def _tensorboard(args: Any):
    from miles_core.logging.tensorboard_logger import TensorboardLogger

    return TensorboardLogger(args)


@hookimpl
def miles_loggers():
    yield LoggerSpec(name="stdout", description="One structured row per rollout on stdout (--log-interval)",
                     factory=_stdout, enabled_by=lambda args: True)
    yield LoggerSpec(name="jsonl", description="Every metric row appended to <run-dir>/metrics.jsonl",
                     factory=_jsonl, enabled_by=lambda args: bool(getattr(args, "run_dir", None)))
    yield LoggerSpec(name="wandb", description="Weights & Biases with train/rollout/perf/eval step axes (--use-wandb)",
                     factory=_wandb, enabled_by=lambda args: bool(getattr(args, "use_wandb", False)))
    yield LoggerSpec(name="tensorboard", description="TensorBoard event files under --tensorboard-dir",
                     factory=_tensorboard, enabled_by=lambda args: bool(getattr(args, "tensorboard_dir", None)))


@hookimpl
def miles_register_commands(subparsers):
    plot = subparsers.add_parser("plot", help="Draw reward, loss, KL, entropy and timing curves of a run as a PNG")
    plot.add_argument("run_dir", help="the --run-dir of a miles train run (holds metrics.jsonl)")
    plot.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/curves.png)")

    def run(args):
        from miles_core.logging.plot import run_plot_command

        return run_plot_command(args)

    plot.set_defaults(func=run)
