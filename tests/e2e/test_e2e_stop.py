"""Stopping ``miles train`` with SIGINT (Ctrl-C) or SIGTERM (schedulers) stops everything it started.

The run is interrupted mid-training; it must exit with 130 after stopping engines, router, train ranks
and Ray, leaving no process of its own behind (found through the run's environment tag).
"""

from __future__ import annotations

import signal

import pytest
from e2e_support import base_flags, rollout_rows, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_stops_engines_router_and_ray(sig, tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    run_dir = tmp_path / "run"
    run = miles_train(base_flags(tiny_qwen3, say_digit_prompts, run_dir, num_rollout=1000)).start()
    wait_for(lambda: rollout_rows(run_dir), timeout=180, what=f"the first rollout\n{run.output_tail()}")
    assert run.servers("miles_core.engines.embedded") and run.servers("miles_core.router")

    run.signal(sig)
    code = run.wait(90)
    assert code == 130, f"exit code {code}\n{run.output_tail()}"
    assert f"interrupted ({sig.name})" in run.output()
    try:
        wait_for(lambda: not run.leftovers(), timeout=20, what="every process of the run to exit")
    except TimeoutError:
        pytest.fail(f"processes outlived the interrupted run: {run.leftovers()}")
