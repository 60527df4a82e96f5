"""``parse_and_validate``: from a command line to a checked namespace, before any process starts.

Steps: expand ``@FILE`` arguments → build the parser (core flags + plugin flags) → take out the
``--sglang-*``/``--router-*`` passthrough → argparse → four knobs and core checks → register the
``--*-path`` flags as ad-hoc specs → plugins' ``miles_validate_args`` → registry look-ups of every
selection flag. Each problem is a :class:`~miles_core.config.errors.ConfigError` naming the flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from miles_core.config.arg_files import expand_arg_files
from miles_core.config.arguments import build_train_parser
from miles_core.config.errors import ConfigError
from miles_core.config.passthrough import split_passthrough
from miles_core.config.selection import Selection, resolve_selections
from miles_core.config.validate import validate_core_args

__all__ = ["parse_and_validate", "parse_train_args", "explicit_dests", "scan_plugin_options"]


def scan_plugin_options(argv: Sequence[str]) -> tuple[list[str], bool, list[str]]:
    """Find ``-p/--plugin NAME`` and ``--disable-plugin-autoload`` anywhere in ``argv``.

    Returns (plugin names, autoload disabled, argv without those options). Needed before any parser
    exists, because the loaded plugins add flags and subcommands of their own.
    """
    plugins: list[str] = []
    disable = False
    rest: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            rest.extend(tokens[i:])
            break
        if token in ("-p", "--plugin"):
            if i + 1 >= len(tokens):
                raise ConfigError(f"{token} needs a plugin name (entry point, distribution or module), "
                                  "or no:NAME to block one")
            plugins.append(tokens[i + 1])
            i += 2
            continue
        if token.startswith("--plugin="):
            plugins.append(token.split("=", 1)[1])
        elif token.startswith("-p") and len(token) > 2 and not token.startswith("--"):
            plugins.append(token[2:])
        elif token == "--disable-plugin-autoload":
            disable = True
        else:
            rest.append(token)
        i += 1
    return plugins, disable, rest


def explicit_dests(parser: argparse.ArgumentParser, argv: Iterable[str]) -> set[str]:
    """The dests of the options that appear in ``argv`` (what the user passed, as opposed to defaults)."""
    actions = parser._option_string_actions  # argparse's own option table
    passed: set[str] = set()
    for token in argv:
        if token == "--":
            break
        if token.startswith("-"):
            action = actions.get(token.split("=", 1)[0])
            if action is not None:
                passed.add(action.dest)
    return passed


def _manager_for(plugins: list[str], disable_autoload: bool) -> Any:
    from miles_core.plugins.errors import PluginError
    from miles_core.plugins.manager import build_plugin_manager
    from miles_core.plugins.selection import PluginSelection

    try:
        return build_plugin_manager(PluginSelection.from_options(plugins, disable_autoload))
    except PluginError as exc:
        raise ConfigError(str(exc)) from exc


def parse_train_args(argv: Sequence[str], pm: Any, parser: argparse.ArgumentParser | None = None
                     ) -> tuple[argparse.Namespace, set[str]]:
    """Parse (no validation): returns the namespace and the set of dests passed explicitly."""
    parser = parser if parser is not None else build_train_parser(pm)
    tokens, passthrough = split_passthrough(argv, parser._option_string_actions)
    if explicit_dests(parser, tokens) & {"rollout_function_path", "custom_generate_function_path"}:
        _add_user_function_arguments(parser, tokens)
        tokens, passthrough = split_passthrough(argv, parser._option_string_actions)
    args = parser.parse_args(tokens)
    for dest, values in passthrough.items():
        setattr(args, dest, values)
    passed = explicit_dests(parser, tokens)
    args.explicit_flags = sorted(passed)
    return args, passed


def parse_and_validate(argv: Sequence[str], pm: Any = None, *, parser: argparse.ArgumentParser | None = None,
                       return_selection: bool = False) -> argparse.Namespace | tuple[argparse.Namespace, Selection]:
    """Parse and validate a ``miles train`` command line; the one entry point the training loop uses.

    :param argv: the arguments after ``miles train`` (``@FILE`` tokens are expanded).
    :param pm: the plugin manager; ``None`` builds one from ``-p``/``--disable-plugin-autoload`` in ``argv``
        and the ``MILES_*`` environment variables.
    :param parser: a pre-built ``miles train`` parser (the CLI's subparser), else one is built.
    :param return_selection: also return the :class:`~miles_core.config.selection.Selection`.
    :returns: the namespace (with ``plugin_selection``, ``sglang_server_args``, ``router_args``,
        ``batch_knobs``, ``explicit_flags``, ``eval_datasets`` and the derived defaults filled in),
        or ``(args, selection)``.
    :raises ConfigError: with a message naming the flags to change.
    """
    argv = expand_arg_files(list(argv))
    plugins, disable_autoload, _ = scan_plugin_options(argv)
    if pm is None:
        pm = _manager_for(plugins, disable_autoload)
    args, passed = parse_train_args(argv, pm, parser)
    selection = pm.selection
    args.plugin = [*selection.requested, *(f"no:{name}" for name in selection.blocked)]
    args.disable_plugin_autoload = not selection.autoload
    args.plugin_selection = selection.to_dict()
    validate_core_args(args, passed)
    _register_path_specs(pm, args)
    _run_plugin_validation(pm, args)
    chosen = resolve_selections(args, pm)
    return (args, chosen) if return_selection else args


def _add_user_function_arguments(parser: argparse.ArgumentParser, tokens: list[str]) -> None:
    """Miles's convention: a custom rollout/generate function may carry ``add_arguments(parser)``."""
    from miles_core.plugins.errors import PluginError
    from miles_core.plugins.path_flags import add_user_function_arguments

    known, _ = parser.parse_known_args(tokens)
    try:
        add_user_function_arguments(parser, known)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"a custom function's add_arguments(parser) defines a flag that already exists: {exc}") from exc
    except (PluginError, ImportError) as exc:
        raise ConfigError(str(exc)) from exc


def _register_path_specs(pm: Any, args: argparse.Namespace) -> None:
    from miles_core.plugins.errors import PluginError
    from miles_core.plugins.path_flags import register_path_specs

    try:
        register_path_specs(pm, args)
    except ConfigError:
        raise
    except (PluginError, ImportError, ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc


def _run_plugin_validation(pm: Any, args: argparse.Namespace) -> None:
    for impl in pm.hook.miles_validate_args.get_hookimpls():  # registration (load) order
        if impl.wrapper or impl.hookwrapper:
            raise ConfigError(f"plugin {impl.plugin_name!r}: miles_validate_args cannot be a wrapper hook")
        try:
            impl.function(args=args)
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{exc} (checked by plugin {impl.plugin_name!r})") from exc

