"""The ``miles`` command: ``miles train``, ``miles plugins`` and the subcommands plugins register.

``-p/--plugin`` and ``--disable-plugin-autoload`` may come before or after the subcommand: they are
read first, the plugin manager is built from them, and only then is the parser built (plugins add
flags to ``miles train`` and subcommands to ``miles``). Every error a user can fix (bad flag, bad
plugin name, failed validation) is printed as one line ``miles: error: …`` with exit status 2.
Nothing here imports torch, Ray or transformers.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from miles_core.config.arg_files import expand_arg_files
from miles_core.config.errors import ConfigError
from miles_core.config.parser import MilesArgumentParser

__all__ = ["main", "build_cli_parser", "version_text"]

EXIT_USAGE = 2

DESCRIPTION = """\
Miles: RL post-training of LLMs (GRPO, GSPO, PPO, REINFORCE++, on-policy distillation), built from plugins.
Every data source, generate function, reward, filter, loss estimator, model spec, logger, engine and train
backend is a plugin found through entry points of group 'miles'; 'miles plugins' lists what is installed."""

EPILOG = """\
Plugin options (-p NAME, -p no:NAME, --disable-plugin-autoload) may come before or after the command.
Examples:
  miles train @examples/demo.args --dry-run
  miles train --hf-checkpoint ./model --prompt-data train.jsonl --rm-type math --rollout-batch-size 32 \\
      --n-samples-per-prompt 8 --global-batch-size 64
  miles -p no:miles-rm-math plugins"""


def version_text() -> str:
    """``miles X (miles-core X, Python X)`` from the installed distribution's metadata."""
    import platform
    from importlib import metadata

    from miles_core import __version__

    try:
        dist_version = metadata.version("miles-core")
    except metadata.PackageNotFoundError:
        dist_version = f"{__version__} (not installed)"
    return f"miles {__version__} (miles-core {dist_version}, Python {platform.python_version()})"


def build_cli_parser(pm: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``miles`` parser and its ``train`` subparser, with the plugins' subcommands."""
    from miles_core.cli import train_command
    from miles_core.config.flags.plugins import add_plugin_options

    parser = MilesArgumentParser(prog="miles", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=version_text())
    add_plugin_options(parser.add_argument_group("plugin options"))
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    train_parser = train_command.add_parser(subparsers, pm)
    try:
        from miles_core.cli import plugins_command
    except ImportError:  # pragma: no cover - provided by the plugin-system part of the core
        plugins_command = None
    if plugins_command is not None:
        plugins_command.add_parser(subparsers)
    pm.hook.miles_register_commands(subparsers=subparsers)
    return parser, train_parser


def _command_index(argv: Sequence[str]) -> int | None:
    """Where the subcommand is: the first word that is not an option (``miles`` has no option with a value)."""
    for i, token in enumerate(argv):
        if token == "--":
            return None
        if not token.startswith("-"):
            return i
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"miles: warning: {message}", file=sys.stderr)


@contextmanager
def _user_facing_warnings() -> Iterator[None]:
    """Show configuration and plugin warnings as ``miles: warning: …`` (no file/line noise)."""
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield
    finally:
        warnings.showwarning = previous


def _run(argv: list[str]) -> int:
    from miles_core.config.parse import scan_plugin_options
    from miles_core.plugins.manager import build_plugin_manager
    from miles_core.plugins.selection import PluginSelection

    argv = expand_arg_files(argv)
    plugins, disable_autoload, rest = scan_plugin_options(argv)
    if rest == ["--version"]:  # answer without loading any plugin
        print(version_text())
        return 0
    pm = build_plugin_manager(PluginSelection.from_options(plugins, disable_autoload))
    parser, train_parser = build_cli_parser(pm)
    index = _command_index(rest)
    if index is not None and rest[index] == "train":
        if index:  # options before 'train' other than the plugin options
            parser.parse_args(rest[:index])
        from miles_core.cli.train_command import run_train

        return run_train(rest[index + 1:], pm, train_parser)
    args = parser.parse_args(rest)
    if args.command is None:
        parser.print_help()
        return 0
    args.plugin = list(plugins)
    args.disable_plugin_autoload = disable_autoload
    args.plugin_selection = pm.selection.to_dict()
    args.plugin_manager = pm
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miles`` console script; returns the exit status."""
    from miles_core.plugins.errors import PluginError

    argv = list(sys.argv[1:] if argv is None else argv)
    with _user_facing_warnings():
        try:
            return _run(argv)
        except (ConfigError, PluginError) as exc:
            print(f"miles: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
        except KeyboardInterrupt:
            print("miles: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `miles plugins | head`: the reader left; not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
