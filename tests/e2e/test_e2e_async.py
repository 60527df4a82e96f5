"""``miles train --async``: rollout k+1 is generated while rollout k trains, with bounded staleness.

With ``--update-weights-interval 2 --max-weight-staleness 2`` the weights reach the engines after
every second rollout, and only between generations. The staleness of each batch (the trainer's
version minus the version the engines reported in ``meta_info.weight_version``) then follows
0, 1, 2, 1, 2, 1: rollout 0 comes from the initial weights, rollout k+1 from weights synced before
training k. The sync loop would give 0 everywhere (interval 1) or 0, 1, 0, 1, ... (interval 2).

A checkpoint of rollout k is taken while rollout k+1 is already generated; the data-source state it
saves must still be the one after rollout k, or a resumed run would skip rollout k+1's prompts.
"""

from __future__ import annotations

import json

import pytest
from e2e_support import base_flags, rollout_rows

pytestmark = pytest.mark.e2e


def test_async_overlaps_rollout_and_training_within_the_staleness_bound(tiny_qwen3, say_digit_prompts, tmp_path,
                                                                        miles_train):
    run_dir, ckpt = tmp_path / "run", tmp_path / "ckpt"
    flags = base_flags(tiny_qwen3, say_digit_prompts, run_dir, prompts_per_rollout=4, num_rollout=6)
    run = miles_train([*flags, "--async", "--update-weights-interval", "2", "--max-weight-staleness", "2",
                       "--save", str(ckpt), "--save-interval", "3"]).run(240)

    rows = rollout_rows(run_dir)
    assert [row["rollout_id"] for row in rows] == list(range(6))
    staleness = [row["rollout/weight_staleness"] for row in rows]
    assert staleness == [0, 1, 2, 1, 2, 1], staleness
    assert all(row["rollout/weight_version/mixed_version_ratio"] == 0 for row in rows)  # no sync mid-generation
    synced = [row["rollout_id"] for row in rows if "perf/update_weights_time" in row]
    assert synced == [1, 3, 5]
    assert "async" in run.output()

    state = json.loads((ckpt / "rollout" / "data_source_state_2.json").read_text())
    assert (state["offset"], state["next_sample_index"]) == (3 * 4, 3 * 4 * 8)  # after rollouts 0, 1, 2 only
