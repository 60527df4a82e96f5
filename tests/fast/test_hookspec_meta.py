"""Meta-tests of the extension surface (datasette's lesson, issue #802: a hook nobody tests breaks unnoticed).

Every hookspec must document an ``Example::`` block and must be named by at least one test file other
than this one; every hook must have the ``miles_`` prefix, and every registration hook must map to a
spec type.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from miles_core.plugins import hookspecs
from miles_core.plugins.types import SPEC_TYPES

TESTS_ROOT = Path(__file__).resolve().parents[1]


def _hookspecs() -> dict[str, object]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name: obj for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, marker)}


HOOKS = _hookspecs()


def _test_sources() -> dict[Path, str]:
    this = Path(__file__).resolve()
    return {path: path.read_text(encoding="utf-8") for path in TESTS_ROOT.rglob("*.py") if path.resolve() != this}


TEST_SOURCES = _test_sources()


def test_hookspecs_were_found():
    assert len(HOOKS) >= 15, sorted(HOOKS)
    assert all(name.startswith("miles_") for name in HOOKS)


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_hook_documents_an_example(hook_name):
    doc = inspect.getdoc(HOOKS[hook_name]) or ""
    assert doc.strip(), f"{hook_name} has no docstring"
    match = re.search(r"Example::\n\n((?:[ \t]+\S.*\n?|\n)+)", doc)
    assert match, f"{hook_name}: the docstring needs an 'Example::' block with indented code"
    assert hook_name in match.group(1), f"{hook_name}: the example should show an implementation of {hook_name}"


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_hook_has_a_test(hook_name):
    pattern = re.compile(rf"\b{re.escape(hook_name)}\b")
    users = sorted(str(path.relative_to(TESTS_ROOT)) for path, source in TEST_SOURCES.items() if pattern.search(source))
    assert users, f"no test under tests/ mentions {hook_name}: write one that calls it through a plugin manager"


def test_every_registration_hook_has_a_spec_type():
    registration = {name for name in HOOKS if name in SPEC_TYPES}
    assert registration == set(SPEC_TYPES), "SPEC_TYPES and the registration hookspecs disagree"
