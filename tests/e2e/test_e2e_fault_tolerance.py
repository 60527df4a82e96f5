"""Fault tolerance: an engine killed mid-rollout is restarted and rejoins; no rollout loses a sample.

Two engines, health checks every second. A fault-injecting generate function (``fault_injection.py``)
SIGKILLs one engine's server process as sample 2·64+5 starts, i.e. in the middle of rollout 2 with
requests in flight on both engines. Those requests fail over to the other engine through the router;
the rollout manager's monitor notices the dead engine and restarts it, and the restarted engine
rejoins the router once the next weight sync gave it the current weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import base_flags, rollout_rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NUM_ROLLOUT = 6
PROMPTS = 8
KILL_AT_SAMPLE = 2 * PROMPTS * 8 + 5


def test_engine_killed_mid_rollout_is_restarted_and_no_sample_is_lost(tiny_qwen3, say_digit_prompts, tmp_path,
                                                                      miles_train):
    run_dir = tmp_path / "run"
    flags = base_flags(tiny_qwen3, say_digit_prompts, run_dir, prompts_per_rollout=PROMPTS, num_rollout=NUM_ROLLOUT)
    flags += ["--rollout-num-gpus", "2", "--use-fault-tolerance", "--rollout-health-check-interval", "1",
              "--rollout-health-check-timeout", "5", "--rollout-health-check-first-wait", "0",
              "--custom-generate-function-path", "fault_injection:generate"]
    env = {"PYTHONPATH": str(Path(__file__).parent), "MILES_E2E_KILL_AT_SAMPLE": str(KILL_AT_SAMPLE)}
    run = miles_train(flags, env=env).run(300)

    output = run.output()
    assert "fault injection: killed engine server" in output, run.output_tail()
    rows = rollout_rows(run_dir)
    assert [row["rollout_id"] for row in rows] == list(range(NUM_ROLLOUT))
    # no sample lost: every rollout is a full batch, no group was dropped for a failed request
    assert all(row["rollout/num_samples"] == PROMPTS * 8 for row in rows), [row["rollout/num_samples"] for row in rows]
    assert not [key for row in rows for key in row if key.startswith(("rollout/failed/", "rollout/dropped_groups/"))]
    # the restart is counted (from the rollout after the crash at the latest), and logged on the driver's output
    restarts = [row["rollout/engine_restarts"] for row in rows]
    assert restarts[:2] == [0, 0] and restarts[3:] == [1, 1, 1], restarts
    assert "failed its health check" in output and "restarted at" in output, run.output_tail()
    assert "rejoined the router" in output, run.output_tail()
    # the requests in flight on the dead engine were failed over by the router
    assert "worker evicted" in (run_dir / "router.log").read_text()
