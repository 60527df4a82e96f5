"""``plugins/template`` installs with pip into a fresh virtualenv and ``miles plugins --json`` finds it.

Offline and fast: the venv has no pip of its own; a ``.pth`` file adds this environment's site-packages
(miles-core, pluggy, pip, hatchling, pytest) as a site directory, and pip builds the template without
build isolation or an index. Then the template's own test suite runs against the installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "plugins" / "template"


def _run(command: list[str], *, env: dict[str, str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh venv (no pip of its own) with the template installed by pip from the source folder."""
    root = tmp_path_factory.mktemp("template-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    venv_site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    here_site = sysconfig.get_path("purelib")
    # `import` lines of a .pth run at start-up: addsitedir also processes the editable installs' .pth files.
    (venv_site / "_miles_dev_environment.pth").write_text(f"import site; site.addsitedir({here_site!r})\n")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    home = root / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MILES_", "PIP_", "PYTHON", "VIRTUAL_ENV", "PYTEST_"))}
    env.update(HOME=str(home), PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               TMPDIR=str(root))
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
          str(TEMPLATE)], env=env, cwd=root)
    return python, env


def test_fresh_venv_has_the_template_installed_not_linked(template_venv):
    python, env = template_venv
    script = ("import importlib.metadata as m, miles_plugin_template as t;"
              "print(m.version('miles-plugin-template'), t.__file__)")
    version, location = _run([str(python), "-c", script], env=env, cwd=python.parent).stdout.split()
    assert version == "0.1.0"
    assert not Path(location).is_relative_to(TEMPLATE)  # the installed copy, in the venv's site-packages
    assert Path(location).is_relative_to(python.parent.parent)


def test_miles_plugins_json_discovers_the_template(template_venv):
    python, env = template_venv
    script = "import sys; from miles_core.cli.main import main; sys.exit(main(['plugins', '--json', '--all']))"
    report = json.loads(_run([str(python), "-c", script], env=env, cwd=python.parent).stdout)
    rows = {row["name"]: row for row in report["plugins"]}
    assert rows["template"] == {
        "name": "template", "distribution": "miles-plugin-template", "version": "0.1.0", "status": "active",
        "error": None, "origin": "entry-point", "target": "miles_plugin_template.plugin",
        "provides": {"reward_models": ["keyword_match"], "filters": ["truncation_limit"]},
        "hooks": ["miles_add_arguments", "miles_filters", "miles_reward_models", "miles_validate_args"],
    }
    specs = {(spec["kind"], spec["name"]): spec for spec in report["specs"]}
    assert specs[("reward_models", "keyword_match")]["source"] == "miles-plugin-template 0.1.0 (plugin 'template')"


def test_template_tests_pass_against_the_installed_package(template_venv):
    python, env = template_venv
    result = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env=env, cwd=TEMPLATE)
    assert " passed" in result.stdout and "failed" not in result.stdout
