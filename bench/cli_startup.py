"""How fast the ``miles`` CLI answers, and whether it imported anything heavy.

Runs each command N times in a fresh interpreter (``python -m miles_core.cli.main …``, what the
``miles`` console script runs), reports the median/min/max wall time, and runs it once more with
``python -X importtime`` to list which heavy packages (torch, Ray, transformers, …) were imported.
The target is under 1 s per command with no heavy import.

    python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS: list[list[str]] = [["--help"], ["train", "--help"], ["plugins"]]
HEAVY = ("torch", "ray", "transformers", "megatron", "sglang", "safetensors", "numpy", "wandb", "tensorboard",
         "fastapi", "uvicorn", "httpx", "math_verify", "sympy", "matplotlib", "pandas")
TARGET_S = 1.0


def _run(argv: list[str], extra: list[str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *(extra or []), "-m", "miles_core.cli.main", *argv],
                          capture_output=True, text=True, env=env, check=False)


def heavy_imports(argv: list[str]) -> list[str]:
    """Top-level packages from :data:`HEAVY` that ``python -X importtime`` saw being imported."""
    result = _run(argv, ["-X", "importtime"])
    seen = set()
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        module = line.rsplit("|", 1)[1].strip()
        top = module.split(".", 1)[0]
        if top in HEAVY:
            seen.add(top)
    return sorted(seen)


def time_command(argv: list[str], runs: int) -> tuple[list[float], int]:
    _run(argv)  # warm the OS file cache and the .pyc files once
    timings = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        code = _run(argv).returncode
        timings.append(time.perf_counter() - start)
    return timings, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (default 7)")
    options = parser.parse_args()
    baseline, _ = time_command(["--version"], options.runs)
    rows = []
    ok = True
    for argv in COMMANDS:
        timings, code = time_command(argv, options.runs)
        heavy = heavy_imports(argv)
        median = statistics.median(timings)
        passed = code == 0 and median < TARGET_S and not heavy
        ok &= passed
        rows.append((f"miles {' '.join(argv)}", median, min(timings), max(timings), code,
                     ", ".join(heavy) or "none", "ok" if passed else "FAIL"))
    print(f"miles CLI start-up: median of {options.runs} fresh processes (python {sys.version.split()[0]}); "
          f"target < {TARGET_S:.1f} s with no heavy import")
    print(f"interpreter + `miles --version` (no plugins loaded): {statistics.median(baseline):.3f} s")
    header = ("command", "median s", "min s", "max s", "exit", "heavy modules imported", "verdict")
    widths = [max(len(str(h)), *(len(f"{r[i]:.3f}" if isinstance(r[i], float) else str(r[i])) for r in rows))
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        cells = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in row]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
