"""Pytest fixtures for Miles plugin authors (loaded automatically through the ``pytest11`` entry point).

Install ``miles-core`` and these are available in any test suite, nothing to import:

- ``miles_plugin_manager``: a fresh manager with autoload off, so only the core built-ins are loaded;
  your test decides what else is there.
- ``register_plugin``: ``register_plugin(obj_or_module, name=...)`` registers a plugin into that manager
  (or into ``pm=``) and unregisters it when the test ends.
- ``miles_args``: ``miles_args(rm_type="my_reward", my_flag=3)`` is the ``args`` namespace of ``miles train``
  with every flag at its default (yours too, once registered), plus the given values.
- ``miles_cli``: ``miles_cli("plugins", "--json")`` runs the ``miles`` CLI in-process with every
  ``MILES_*`` variable cleared and ``HOME`` in a temporary directory; returns a :class:`CliResult`
  ``(exit_code, stdout, stderr)``. Pass ``env={"MILES_PLUGINS": "my_plugin"}`` to set variables.
- ``miles_fake_distribution``: ``miles_fake_distribution("my-plugin", "1.0", {"my_plugin": "my_plugin"},
  {"my_plugin": source})`` makes an installed-looking distribution (``.dist-info`` with entry points,
  plus its modules) on ``sys.path`` for this test only, to test discovery, ``-p`` and ``-p no:``.

and one helper, :func:`make_fake_distribution`, the same without touching ``sys.path`` (for subprocesses).

Example::

    from my_plugin import plugin

    def test_my_reward(miles_plugin_manager, register_plugin):
        register_plugin(plugin, name="my_plugin")
        spec = miles_plugin_manager.get("reward_models", "my_reward")
        assert spec.description
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CliResult",
    "make_fake_distribution",
    "miles_plugin_manager",
    "register_plugin",
    "miles_args",
    "miles_cli",
    "miles_fake_distribution",
]


# ------------------------------------------------------------------------------------ fake distributions


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def make_fake_distribution(
    tmp_path: str | os.PathLike[str],
    name: str,
    version: str = "0.1.0",
    entry_points: Mapping[str, Any] | None = None,
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write an installed-looking distribution into the directory ``tmp_path`` and return that directory.

    ``importlib.metadata`` finds it once the directory is on ``sys.path``, exactly as it finds a
    pip-installed package: ``NAME-VERSION.dist-info/{METADATA,entry_points.txt,RECORD}``.

    :param entry_points: ``{"ep_name": "module:attr"}`` for the ``miles`` group, or
        ``{"group": {"ep_name": "module:attr"}}`` for several groups.
    :param modules: ``{"dotted.module.name": "source"}``; packages get an ``__init__.py``. Sources are
        dedented, so triple-quoted blocks can be indented like the test.
    """
    root = Path(tmp_path)
    root.mkdir(parents=True, exist_ok=True)
    dist_info = root / f"{_normalized(name)}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups: dict[str, Mapping[str, str]] = {}
    for key, value in (entry_points or {}).items():
        if isinstance(value, Mapping):
            groups[key] = value
        else:
            groups.setdefault("miles", {})[key] = value  # type: ignore[index]
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{ep_name} = {target}" for ep_name, target in entries.items())
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines))
    written: list[str] = []
    for module, source in (modules or {}).items():
        parts = module.split(".")
        for depth in range(1, len(parts)):
            init = root.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text("")
                written.append(init.relative_to(root).as_posix())
        path = root.joinpath(*parts[:-1], parts[-1] + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        written.append(path.relative_to(root).as_posix())
    record = written + [f"{dist_info.name}/{f}" for f in ("METADATA", "entry_points.txt", "RECORD")]
    (dist_info / "RECORD").write_text("".join(f"{line},,\n" for line in record))
    importlib.invalidate_caches()  # also clears importlib.metadata's directory cache
    return root


@pytest.fixture
def miles_fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """A factory: ``miles_fake_distribution(name, version, entry_points, modules) -> site dir``.

    The site directory is put first on ``sys.path`` for this test; the modules it imported are removed
    from ``sys.modules`` at teardown, so the next test imports them afresh.
    """
    site = tmp_path / "fake-site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)

    def make(name: str, version: str = "0.1.0", entry_points: Mapping[str, Any] | None = None,
             modules: Mapping[str, str] | None = None) -> Path:
        return make_fake_distribution(site, name, version, entry_points, modules)

    yield make
    for module_name in set(sys.modules) - before:
        module_file = getattr(sys.modules.get(module_name), "__file__", None) or ""
        if module_file.startswith(str(site)):
            del sys.modules[module_name]
    importlib.invalidate_caches()


# ----------------------------------------------------------------------------------------- managers


@pytest.fixture
def miles_plugin_manager() -> Any:
    """A fresh plugin manager without autoload: only ``miles-core``'s built-ins, whatever else is installed."""
    from miles_core.plugins.manager import MilesPluginManager
    from miles_core.plugins.selection import PluginSelection

    return MilesPluginManager(PluginSelection(autoload=False)).load_selected()


@pytest.fixture
def register_plugin(miles_plugin_manager: Any) -> Iterator[Callable[..., str]]:
    """``register_plugin(obj_or_module, name=None, pm=None) -> name``: registered now, unregistered at teardown.

    The plugin goes into ``miles_plugin_manager`` unless another manager is given as ``pm``. Problems
    (a misspelt hook, a spec of the wrong type, a duplicate name) raise ``PluginError`` at once.
    """
    registered: list[tuple[Any, str]] = []

    def register(plugin: Any, name: str | None = None, pm: Any = None) -> str:
        manager = pm if pm is not None else miles_plugin_manager
        plugin_name = manager.register_plugin(plugin, name=name)
        registered.append((manager, plugin_name))
        return plugin_name

    yield register
    for manager, plugin_name in reversed(registered):
        manager.unregister_plugin(plugin_name)


@pytest.fixture
def miles_args(miles_plugin_manager: Any) -> Callable[..., argparse.Namespace]:
    """``miles_args(**flags) -> args``: the ``miles train`` namespace with every default, plus the given values.

    The defaults are those of the core and of every plugin in ``miles_plugin_manager`` at the time of the
    call, so a plugin registered with ``register_plugin`` contributes its own flags. A keyword that is no
    flag's ``dest`` raises ``AttributeError`` (a misspelt flag would otherwise pass silently). No
    validation runs: the namespace is what a hook or spec function receives, not a checked config.
    """
    from miles_core.config.arguments import build_train_parser

    def make(**flags: Any) -> argparse.Namespace:
        args = build_train_parser(miles_plugin_manager).parse_args([])
        for dest, value in flags.items():
            if not hasattr(args, dest):
                raise AttributeError(f"no flag with dest {dest!r}")
            setattr(args, dest, value)
        return args

    return make


# ---------------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliResult:
    """What one ``miles`` invocation did: its exit code and everything it printed."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """``stdout`` parsed as JSON (for ``--json`` commands)."""
        import json

        return json.loads(self.stdout)


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1  # SystemExit("message"): argparse-style error text


@pytest.fixture
def miles_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``miles ARGS...`` in-process, isolated: ``miles_cli("plugins", "--json", env={...})``.

    Every ``MILES_*`` variable is removed and ``HOME`` points at a temporary directory; ``env`` adds
    variables for this call. Plugin warnings are printed to the captured stderr, as a user sees them.
    """
    home = tmp_path / "home"
    home.mkdir()

    def run(*argv: str | Sequence[str], env: Mapping[str, str] | None = None) -> CliResult:
        if len(argv) == 1 and not isinstance(argv[0], str):
            argv = tuple(argv[0])
        from miles_core.cli.main import main

        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("MILES_")]:
                patch.delenv(key)
            patch.setenv("HOME", str(home))
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
                    warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = _show_warning_on_stderr
                try:
                    code = _exit_code(main([str(a) for a in argv]))
                except SystemExit as exc:
                    if isinstance(exc.code, str):
                        print(exc.code, file=sys.stderr)
                    code = _exit_code(exc.code)
        return CliResult(code, stdout.getvalue(), stderr.getvalue())

    return run


def _show_warning_on_stderr(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                            line: Any = None) -> None:
    print(f"{category.__name__}: {message}", file=sys.stderr)
