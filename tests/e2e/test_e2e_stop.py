"""Stopping ``miles train`` stops everything it started: Ctrl-C (SIGINT) mid-training, SIGTERM mid-start-up.

The run must exit with 130 after stopping engines, router, train ranks and Ray, and leave no process
of its own behind (found through the run's environment tag). SIGTERM is what schedulers send; it is
sent while the engines are still starting, the other moment a user gives up on a run.
"""

from __future__ import annotations

import signal

import pytest
from e2e_support import base_flags, rollout_rows, wait_for

pytestmark = pytest.mark.e2e


def assert_stopped_cleanly(run, sig: signal.Signals) -> None:
    code = run.wait(120)
    assert code == 130, f"exit code {code}\n{run.output_tail()}"
    assert f"interrupted ({sig.name}); stopping engines, router and Ray" in run.output()
    try:
        wait_for(lambda: not run.leftovers(), timeout=20, what="every process of the run to exit")
    except TimeoutError:
        pytest.fail(f"processes outlived the interrupted run: {run.leftovers()}")


def test_ctrl_c_mid_training(tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    run_dir = tmp_path / "run"
    run = miles_train(base_flags(tiny_qwen3, say_digit_prompts, run_dir, num_rollout=1000)).start()
    wait_for(lambda: rollout_rows(run_dir), timeout=180, what=f"the first rollout\n{run.output_tail()}")
    assert run.servers("miles_core.engines.embedded") and run.servers("miles_core.router")
    run.signal(signal.SIGINT)
    assert_stopped_cleanly(run, signal.SIGINT)


def test_sigterm_while_engines_start(tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    run_dir = tmp_path / "run"
    run = miles_train(base_flags(tiny_qwen3, say_digit_prompts, run_dir, num_rollout=1000)).start()
    wait_for(lambda: run.servers("miles_core.engines.embedded"), timeout=180, interval=0.1,
             what=f"an engine process\n{run.output_tail()}")
    run.signal(signal.SIGTERM)
    assert_stopped_cleanly(run, signal.SIGTERM)
    assert not rollout_rows(run_dir)
