"""Plugin selection flags: which plugin packages load in every process of the run.

They are read before the parser is built (the plugins add flags of their own), so the CLI accepts
them before or after the subcommand; they are defined here too so ``miles train --help`` lists them
and the parsed args carry them.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Plugins",
        "Every installed package with entry points of group 'miles' is loaded (see 'miles plugins').",
    )
    add_plugin_options(group)


def add_plugin_options(container: argparse._ActionsContainer) -> None:
    """``-p/--plugin`` and ``--disable-plugin-autoload`` (shared by the top-level ``miles`` parser)."""
    container.add_argument(
        "-p", "--plugin", action="append", default=[], metavar="NAME",
        help="Load the plugin NAME (entry-point name, distribution name, or importable module path), even with "
             "autoload off; '-p no:NAME' blocks a plugin or a whole distribution before it is imported. "
             "Repeatable. Env: MILES_PLUGINS=a,b (autoload off, load exactly these).",
    )
    container.add_argument(
        "--disable-plugin-autoload", action="store_true",
        help="Load only miles-core's built-ins and the plugins named with -p "
             "(env: MILES_DISABLE_PLUGIN_AUTOLOAD=1).",
    )
