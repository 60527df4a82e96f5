"""Save at rollout k with 2 ranks, resume in a new process with 1 rank: the run continues as if never stopped.

Compared with an uninterrupted run: the weights and Adam moments right after loading, the RNG stream,
the LR schedule, and the next optimizer step's metrics and weights. Also: the on-disk layout, the
``--save-hf`` export, ``--no-load-optim``, and the lifecycle hooks.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from fsdp_harness import fixed_batch, full_state, make_args, new_actor, run_ranks

BATCHES = [fixed_batch(8, vocab=100, seed=s) for s in range(3)]
SCHEDULE = dict(lr=1e-2, lr_decay_style="cosine", lr_warmup_iters=1, min_lr=1e-3, num_rollout=3,
                num_steps_per_rollout=2, micro_batch_size=2, weight_decay=0.01)


def _full_optimizer_state(actor) -> dict:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    state = get_optimizer_state_dict(actor.actor.model, actor.actor.optimizer,
                                     options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {name: {k: torch.as_tensor(v).clone() for k, v in entry.items()} for name, entry in state["state"].items()}


def save_scenario(rank: int, world: int, port: int, ckpt: str, save_dir: str, probe: str) -> dict:
    os.environ["MILES_HOOK_PROBE"] = probe
    args = make_args(ckpt, save=save_dir, save_hf=os.path.join(save_dir, "hf_{rollout_id}"),
                     custom_megatron_post_save_hook_path="hook_probe:after_save",
                     custom_megatron_before_train_step_hook_path="hook_probe:before_train_step",
                     custom_megatron_before_log_prob_hook_path="hook_probe:before_log_prob", **SCHEDULE)
    actor, first = new_actor(args, rank, world, port)
    for rollout_id in range(2):
        actor.train(rollout_id, BATCHES[rollout_id])
    path = actor.save(1)
    return {"first_rollout_id": first, "path": path}


def resume_scenario(rank: int, world: int, port: int, ckpt: str, save_dir: str) -> dict:
    out: dict = {}
    # Uninterrupted: rollouts 0, 1, (snapshot), 2.
    actor, _ = new_actor(make_args(ckpt, **SCHEDULE), rank, world, port)
    for rollout_id in range(2):
        actor.train(rollout_id, BATCHES[rollout_id])
    out["straight_after_1"] = (full_state(actor.actor.model), _full_optimizer_state(actor), torch.rand(4))
    out["straight_2"] = (actor.train(2, BATCHES[2]), full_state(actor.actor.model))

    # Resumed from the 2-rank checkpoint: nothing carried over but the files.
    resumed, next_rollout_id = new_actor(make_args(ckpt, load=save_dir, **SCHEDULE), rank, world, port)
    out["resumed_next_rollout_id"] = next_rollout_id
    out["resumed_after_load"] = (full_state(resumed.actor.model), _full_optimizer_state(resumed), torch.rand(4))
    out["resumed_2"] = (resumed.train(next_rollout_id, BATCHES[2]), full_state(resumed.actor.model))

    fresh_optim, _ = new_actor(make_args(ckpt, load=save_dir, no_load_optim=True, **SCHEDULE), rank, world, port)
    out["no_load_optim"] = (len(fresh_optim.actor.optimizer.state), fresh_optim.train(2, BATCHES[2])["steps"])
    return out


@pytest.fixture(scope="module")
def runs(tiny_qwen3, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ckpt") / "actor"
    probe = tmp_path_factory.mktemp("probe") / "hooks.jsonl"
    saved = run_ranks(save_scenario, 2, str(tiny_qwen3), str(save_dir), str(probe))
    resumed = run_ranks(resume_scenario, 1, str(tiny_qwen3), str(save_dir))[0]
    hooks = [json.loads(line) for line in probe.read_text().splitlines()]
    return {"saved": saved, "resumed": resumed, "save_dir": save_dir, "hooks": hooks}


def _close(a: dict, b: dict, atol=1e-5) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=1e-4, msg=name)


def test_layout_follows_miles(runs):
    save_dir = runs["save_dir"]
    assert (save_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    iteration = save_dir / "iter_0000002"
    for part in ("model", "optimizer", "lr_scheduler"):
        assert (iteration / part / ".metadata").is_file(), part
    assert (iteration / "rng.pt").is_file()
    meta = json.loads((iteration / "meta.json").read_text())
    assert meta["rollout_id"] == 1 and meta["next_rollout_id"] == 2 and meta["world_size"] == 2
    assert meta["global_step"] == 4
    assert runs["saved"][0]["path"] == str(iteration) == runs["saved"][1]["path"]
    assert runs["saved"][0]["first_rollout_id"] == 0


def test_resume_restores_weights_optimizer_and_rng(runs):
    resumed = runs["resumed"]
    assert resumed["resumed_next_rollout_id"] == 2
    params, optim, rand = resumed["straight_after_1"]
    params_r, optim_r, rand_r = resumed["resumed_after_load"]
    _close(params, params_r)
    assert optim.keys() == optim_r.keys() and optim
    for name in optim:
        assert float(optim[name]["step"]) == float(optim_r[name]["step"]) == 4.0
        _close({k: v for k, v in optim[name].items() if k != "step"},
               {k: v for k, v in optim_r[name].items() if k != "step"}, atol=1e-6)
    assert torch.equal(rand, rand_r)


def test_the_next_step_matches_an_uninterrupted_run(runs):
    (straight, straight_params), (resumed, resumed_params) = runs["resumed"]["straight_2"], runs["resumed"]["resumed_2"]
    for row_a, row_b in zip(straight["steps"], resumed["steps"], strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], abs=1e-5, rel=1e-4), key
    assert straight["steps"][0]["train/lr-pg_0"] < SCHEDULE["lr"]  # mid-cosine, not a restarted warmup
    _close(straight_params, resumed_params)


def test_no_load_optim_starts_a_fresh_optimizer(runs):
    optim_state_size, steps = runs["resumed"]["no_load_optim"]
    assert optim_state_size == 0
    assert steps[0]["train/lr-pg_0"] == 0.0  # a fresh schedule is back in warmup


def test_save_hf_exports_a_loadable_model_with_the_trained_weights(runs, tiny_qwen3):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir = runs["save_dir"] / "hf_1"
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    AutoTokenizer.from_pretrained(hf_dir)
    trained = runs["resumed"]["straight_after_1"][0]
    exported = dict(model.named_parameters())
    for name, value in trained.items():
        torch.testing.assert_close(exported[name].detach(), value, atol=1e-5, rtol=1e-4, msg=name)


def test_lifecycle_hooks_ran(runs):
    hooks = runs["hooks"]
    saves = [h for h in hooks if h["hook"] == "after_save"]
    assert len(saves) == 1  # rank 0 only
    assert saves[0]["rollout_id"] == 1 and saves[0]["checkpoint_dir"].endswith("iter_0000002")
    assert saves[0]["hf"].endswith("hf_1")
    steps = [(h["rollout_id"], h["step_id"]) for h in hooks if h["hook"] == "before_train_step"]
    assert sorted(steps) == sorted([(r, s) for r in range(2) for s in range(2)] * 2)  # every step, both ranks
    assert [h["store_prefix"] for h in hooks if h["hook"] == "before_log_prob"] == [""] * 4
