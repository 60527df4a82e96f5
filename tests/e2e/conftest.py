"""Shared fixtures of the end-to-end tests: the tiny model, the say-digit prompts, ``miles train`` runs.

Every test here starts the real thing (``miles train`` with Ray, router, embedded engines and the FSDP
backend on CPU) and is marked ``e2e``; the longer ones are also ``slow`` (``-m "e2e and not slow"``
keeps the quick ones). Every run is cleaned up, and a run that leaves an engine or router process
behind fails its test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import MilesTrain


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: starts `miles train` end to end (Ray, router, engines, trainer)")


@pytest.fixture(scope="session")
def say_digit_prompts(tmp_path_factory) -> Path:
    """2000 ``Say 7:`` prompts (seed 0), the demo task."""
    from miles_say_digit.task import write_dataset

    return write_dataset(tmp_path_factory.mktemp("say-digit") / "prompts.jsonl", 2000, seed=0)


@pytest.fixture
def miles_train(tmp_path):
    """``miles_train(flags) -> MilesTrain`` (not started); every run is cleaned up after the test."""
    runs: list[MilesTrain] = []

    def make(flags: list[str], env: dict[str, str] | None = None) -> MilesTrain:
        run = MilesTrain(flags, tmp_path / f"miles-train-{len(runs)}.log", env=env)
        runs.append(run)
        return run

    yield make
    leftovers = {run.log_path.name: run.cleanup() for run in runs}
    leftovers = {name: procs for name, procs in leftovers.items() if procs}
    assert not leftovers, f"engine/router processes outlived their run: {leftovers}"
