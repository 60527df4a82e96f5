"""``miles --help``, ``miles train --help`` and ``miles plugins`` must not import torch, Ray or transformers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "transformers", "megatron", "sglang")
PROBE = """
import contextlib, io, json, sys
from miles_core.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))
print(json.dumps({"code": code, "heavy": heavy}))
""".replace("HEAVY", repr(HEAVY))


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["plugins"], ["--version"]])
def test_cli_does_not_import_heavy_packages(argv):
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
