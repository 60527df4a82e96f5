"""Resume after a kill: ``--load`` continues the run where its last checkpoint left it.

Run 1 saves every 3 rollouts (``--save DIR --save-interval 3``) and is SIGKILLed right after the
checkpoint of rollout 5, with Ray, router and engines still up: the engines and the router must die
with their Ray actors (fate-share guards). Run 2 is the same command plus ``--load DIR``; it must

- start at rollout 6 (the FSDP backend's ``init`` returns the saved rollout + 1),
- take the prompts that come after the saved position (the data source's state), with sample
  indices continuing from it,
- log rollouts 6.. into the same ``metrics.jsonl``, whose rollout ids then run 0..N-1 once each
  (rows the killed run logged after its checkpoint are moved to ``metrics.superseded.jsonl``),
- continue the reward curve from the trained weights instead of the random-init level.
"""

from __future__ import annotations

import json

import pytest
from e2e_support import base_flags, mean, rollout_rows, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NUM_ROLLOUT = 9
PROMPTS = 16
SAVE_INTERVAL = 3
KILL_AFTER_ROLLOUT = 5


def debug_samples(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]
    return [row["sample"] for row in rows]


def test_resume_after_sigkill_continues_data_metrics_and_reward(tiny_qwen3, say_digit_prompts, tmp_path, miles_train):
    run_dir, ckpt, dumps = tmp_path / "run", tmp_path / "ckpt", tmp_path / "dumps"
    flags = base_flags(tiny_qwen3, say_digit_prompts, run_dir, prompts_per_rollout=PROMPTS, num_rollout=NUM_ROLLOUT)
    flags += ["--save", str(ckpt), "--save-interval", str(SAVE_INTERVAL),
              "--save-debug-rollout-data", str(dumps / "rollout_{rollout_id}.jsonl")]

    first = miles_train(flags).start()
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    wait_for(lambda: tracker.is_file() and tracker.read_text().strip() == str(KILL_AFTER_ROLLOUT + 1),
             timeout=240, interval=0.1, what=f"the checkpoint of rollout {KILL_AFTER_ROLLOUT}\n{first.output_tail()}")
    first.process.kill()  # SIGKILL: no clean-up code of miles train runs
    first.process.wait(10)
    assert first.cleanup() == [], "engine/router processes outlived the killed run"
    logged_before = [row["rollout_id"] for row in rollout_rows(run_dir)]
    assert logged_before[: KILL_AFTER_ROLLOUT + 1] == list(range(KILL_AFTER_ROLLOUT + 1))

    second = miles_train([*flags, "--load", str(ckpt)]).run(300)
    assert f"starting at rollout {KILL_AFTER_ROLLOUT + 1} (resumed from {ckpt})" in second.output()

    rows = rollout_rows(run_dir)
    assert [row["rollout_id"] for row in rows] == list(range(NUM_ROLLOUT)), "rollout ids must run once each"
    superseded = run_dir / "metrics.superseded.jsonl"
    if len(logged_before) > KILL_AFTER_ROLLOUT + 1:  # the killed run got further than its checkpoint
        assert superseded.is_file()

    # the data source continued: rollout 6 holds prompts 96.. with sample indices 768..
    resumed = debug_samples(dumps / f"rollout_{KILL_AFTER_ROLLOUT + 1}.jsonl")
    first_index = (KILL_AFTER_ROLLOUT + 1) * PROMPTS * 8
    assert [s["index"] for s in resumed] == list(range(first_index, first_index + PROMPTS * 8))
    lines = say_digit_prompts.read_text().splitlines()
    expected_prompts = [json.loads(line)["prompt"] for line in lines[(KILL_AFTER_ROLLOUT + 1) * PROMPTS:][:PROMPTS]]
    assert [s["prompt"] for s in resumed[::8]] == expected_prompts

    # the reward curve continued from the trained policy, not from the initial level
    rewards = [row["rollout/raw_reward"] for row in rows]
    initial, before_kill = mean(rewards[:2]), mean(rewards[KILL_AFTER_ROLLOUT - 1: KILL_AFTER_ROLLOUT + 1])
    after_resume = mean(rewards[KILL_AFTER_ROLLOUT + 1: KILL_AFTER_ROLLOUT + 3])
    assert before_kill > initial + 0.03, f"the first run did not learn: {rewards}"
    assert after_resume > initial + 0.03 and after_resume > 0.8 * before_kill, f"the curve restarted: {rewards}"
