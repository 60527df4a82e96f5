"""Every flag of ``miles train``, defined once: the core groups, then the plugins' own flags.

``args.<dest>`` uses Miles's flag names (``--rollout-batch-size`` → ``args.rollout_batch_size``). The
groups live in :mod:`miles_core.config.flags` (one module per group of Miles's flag reference); plugins
add theirs through ``miles_add_arguments(parser)``, and argparse rejects a flag defined twice, so a
plugin that clashes with a core flag is reported at once, naming the plugin.
"""

from __future__ import annotations

import argparse
from typing import Any

from miles_core.config.errors import ConfigError
from miles_core.config.flags import GROUP_MODULES
from miles_core.config.parser import MilesArgumentParser

__all__ = ["add_core_arguments", "add_plugin_arguments", "build_train_parser", "TRAIN_DESCRIPTION"]

TRAIN_DESCRIPTION = """\
Train a policy with RL: rollout (generate + reward) → train → push weights to the engines, repeated.
Flags can also come from a file: 'miles train @run.args' reads whitespace-separated flags ('#' comments).
Validation runs before any process starts; --dry-run stops after printing the resolved plan."""


TRAIN_USAGE = "%(prog)s [--async] [--dry-run] [@FILE ...] [FLAG ...]   (flags by group below)"


def add_core_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every core flag group to ``parser`` (and ``--dry-run``)."""
    for module in GROUP_MODULES:
        module.add_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="Validate the flags, print the resolved plan (plugins, batch sizes, processes) and exit.")


def add_plugin_arguments(parser: argparse.ArgumentParser, pm: Any) -> None:
    """Let every plugin add its own flags; a clash with an existing flag names the plugin."""
    hook = pm.hook.miles_add_arguments
    for impl in hook.get_hookimpls():  # registration (load) order, so --help groups appear in a stable order
        if impl.wrapper or impl.hookwrapper:
            raise ConfigError(f"plugin {impl.plugin_name!r}: miles_add_arguments cannot be a wrapper hook")
        try:
            impl.function(parser=parser)
        except argparse.ArgumentError as exc:
            raise ConfigError(
                f"plugin {impl.plugin_name!r} defines a flag that already exists ({exc}); "
                f"rename it in the plugin, or block the plugin with -p no:{impl.plugin_name}"
            ) from exc


def build_train_parser(pm: Any | None = None, *, prog: str = "miles train",
                       parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``miles train`` parser: core flags, then each loaded plugin's flags (when ``pm`` is given).

    ``parser`` lets the CLI fill the parser that ``subparsers.add_parser("train")`` created.
    """
    if parser is None:
        parser = MilesArgumentParser(prog=prog, description=TRAIN_DESCRIPTION, usage=TRAIN_USAGE)
    add_core_arguments(parser)
    if pm is not None:
        add_plugin_arguments(parser, pm)
    return parser
