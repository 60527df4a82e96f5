"""The FSDP backend on CPU (gloo): world size 1 and 2 agree, packing is exact, steps help, guards hold.

All scenarios of one world size run inside one set of spawned processes (a module fixture), so the
torch/transformers start-up is paid twice for the whole file; the tests only compare what came back.
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from fsdp_harness import fixed_batch, full_state, make_args, new_actor, run_ranks

BATCH = dict(num_samples=10, vocab=100, seed=3)  # 5 per step: ranks get 3 and 2 samples (a zero-loss pass)


def _train_once(ckpt: str, rank: int, world: int, port: int, **overrides):
    args = make_args(ckpt, num_steps_per_rollout=2, **overrides)
    actor, _ = new_actor(args, rank, world, port)
    result = actor.train(0, fixed_batch(**BATCH))
    return result, full_state(actor.actor.model)


def equivalence_scenarios(rank: int, world: int, port: int, tied: str, untied: str) -> dict:
    """Runs on every rank: the same training under the two batching modes and both loading paths."""
    padded = _train_once(tied, rank, world, port, micro_batch_size=2)
    packed = _train_once(untied, rank, world, port, use_dynamic_batch_size=True, max_tokens_per_gpu=30)
    return {"padded": padded, "packed": packed}


def single_rank_scenarios(rank: int, world: int, port: int, tied: str, untied: str, run_dir: str) -> dict:
    out = equivalence_scenarios(rank, world, port, tied, untied)
    batch = fixed_batch(**BATCH)

    # Packed (dynamic batching) and padded (fixed micro-batches) log-probs, and an unsharded HF reference.
    packed_actor, _ = new_actor(make_args(tied, use_dynamic_batch_size=True, max_tokens_per_gpu=40), rank, world, port)
    padded_actor, _ = new_actor(make_args(tied, micro_batch_size=3), rank, world, port)
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(tied, dtype=torch.float32, attn_implementation="eager").eval()
    truth = []
    with torch.no_grad():
        for tokens, n in zip(batch["tokens"], batch["response_lengths"], strict=True):
            logits = reference(torch.tensor([tokens])).logits[0, -n - 1 : -1].float()
            truth.append(torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[-n:])[:, None]).squeeze(-1))
    out["log_probs"] = {"packed": packed_actor.compute_log_probs(batch),
                        "padded": padded_actor.compute_log_probs(batch), "truth": truth}
    hot = make_args(tied, rollout_temperature=0.7, micro_batch_size=8)
    out["log_probs"]["hot"] = new_actor(hot, rank, world, port)[0].compute_log_probs(batch)

    # One SFT step lowers the SFT loss on the same batch; a GRPO step moves toward positive advantages.
    sft, _ = new_actor(make_args(tied, loss_type="sft_loss", lr=1e-2, micro_batch_size=4), rank, world, port)
    out["sft_losses"] = [sft.train(r, batch)["steps"][0]["train/loss"] for r in range(2)]
    grpo, _ = new_actor(make_args(tied, lr=1e-2, micro_batch_size=4), rank, world, port)
    before = grpo.compute_log_probs(batch)
    grpo.train(0, batch)
    out["grpo_shift"] = (before, grpo.compute_log_probs(batch))

    # NaN guard: a NaN reward poisons the loss; the step is skipped (or, unguarded, poisons the weights).
    poisoned = dict(batch, rewards=[float("nan")] + batch["rewards"][1:])
    guarded, _ = new_actor(make_args(tied, micro_batch_size=4), rank, world, port)
    initial = full_state(guarded.actor.model)
    out["nan_guarded"] = (guarded.train(0, poisoned), initial, full_state(guarded.actor.model))
    unguarded_args = make_args(tied, micro_batch_size=4, check_for_nan_in_loss_and_grad=False)
    unguarded, _ = new_actor(unguarded_args, rank, world, port)
    unguarded.train(0, poisoned)
    out["nan_unguarded"] = full_state(unguarded.actor.model)

    # Gradient checkpointing changes memory, not results.
    out["grad_ckpt"] = _train_once(tied, rank, world, port, micro_batch_size=2, gradient_checkpointing=True)

    # PPO: critic + KL loss against a frozen reference; Miles's CI invariants at the first step.
    ppo_args = make_args(tied, advantage_estimator="ppo", use_kl_loss=True, kl_loss_coef=0.1, micro_batch_size=4,
                         ref_update_interval=1, lr=1e-2, num_steps_per_rollout=2)
    ppo, _ = new_actor(ppo_args, rank, world, port)
    out["ppo"] = [ppo.train(r, batch) for r in range(2)]  # the reference follows the actor every rollout

    # --use-pytorch-profiler writes a trace of the chosen steps.
    profiled, _ = new_actor(make_args(tied, micro_batch_size=4, use_pytorch_profiler=True, profile_step_start=0,
                                      profile_step_end=1, run_dir=run_dir), rank, world, port)
    profiled.train(0, batch)
    return out


@pytest.fixture(scope="module")
def checkpoints(tiny_qwen3, tmp_path_factory):
    """The tied tiny Qwen3 and an untied twin (exercises the rank-0-broadcast loading path)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    untied = tmp_path_factory.mktemp("untied-qwen3")
    config = AutoConfig.from_pretrained(tiny_qwen3)
    config.tie_word_embeddings = False
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(untied)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_qwen3 / name).exists():
            shutil.copy(tiny_qwen3 / name, untied / name)
    return str(tiny_qwen3), str(untied)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def world1(checkpoints, run_dir):
    return run_ranks(single_rank_scenarios, 1, *checkpoints, str(run_dir))[0]


@pytest.fixture(scope="module")
def world2(checkpoints):
    return run_ranks(equivalence_scenarios, 2, *checkpoints)


def _assert_same_training(a, b, *, atol=1e-5):
    (result_a, params_a), (result_b, params_b) = a, b
    assert len(result_a["steps"]) == len(result_b["steps"]) == 2
    for row_a, row_b in zip(result_a["steps"], result_b["steps"], strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], abs=atol, rel=1e-4), key
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        torch.testing.assert_close(params_a[name], params_b[name], atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("mode", ["padded", "packed"])
def test_world_size_1_and_2_give_the_same_loss_and_weights(world1, world2, mode):
    _assert_same_training(world1[mode], world2[0][mode])
    _assert_same_training(world2[0][mode], world2[1][mode], atol=0)  # every rank reports the same


def test_training_changes_the_weights_and_reports_miles_metrics(world1, tiny_qwen3):
    result, params = world1["padded"]
    from safetensors.torch import load_file

    original = load_file(str(tiny_qwen3 / "model.safetensors"))
    moved = [n for n in original if not torch.equal(original[n], params[n])]
    assert len(moved) == len(original)
    row = result["steps"][0]
    for key in ("train/loss", "train/pg_loss", "train/pg_clipfrac", "train/ppo_kl", "train/entropy_loss",
                "train/grad_norm", "train/lr-pg_0", "train/lr-pg_1", "train/step"):
        assert key in row, key
    assert abs(row["train/ppo_kl"]) < 1e-9 and row["train/pg_clipfrac"] == 0.0  # Miles's step-0 invariants
    assert [r["train/step"] for r in result["steps"]] == [0.0, 1.0]
    for key in ("perf/log_probs_time", "perf/actor_train_time", "perf/actor_train_tok_per_s", "perf/train_time"):
        assert result["perf"][key] > 0, key
    assert result["rollout"]["rollout/rewards"] == pytest.approx(sum(fixed_batch(**BATCH)["rewards"]) / 10)


def test_packed_and_padded_log_probs_match_an_unsharded_model(world1):
    lp = world1["log_probs"]
    for packed, padded, truth in zip(lp["packed"], lp["padded"], lp["truth"], strict=True):
        torch.testing.assert_close(packed, truth, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(padded, truth, atol=2e-5, rtol=1e-5)
    hot = torch.cat(lp["hot"])
    assert not torch.allclose(hot, torch.cat(lp["truth"]), atol=1e-3)  # temperature divides the logits


def test_one_step_lowers_the_loss_on_its_batch(world1):
    first, second = world1["sft_losses"]
    assert second < first - 1e-3
    before, after = world1["grpo_shift"]
    advantages = fixed_batch(**BATCH)["rewards"]
    masks = fixed_batch(**BATCH)["loss_masks"]
    gain = sum(a * float(((n - b) * torch.tensor(m, dtype=torch.float32)).sum() / sum(m))
               for a, b, n, m in zip(advantages, before, after, masks, strict=True))
    assert gain > 0  # the surrogate Σ A·Δlog π improved


def test_nan_guard_skips_the_step_and_counts_it(world1):
    result, initial, final = world1["nan_guarded"]
    row = result["steps"][0]
    assert row["train/skipped_step"] == 1.0 and row["train/skipped_steps_total"] >= 1.0
    assert not math.isfinite(row["train/loss"])
    for name in initial:
        assert torch.equal(initial[name], final[name]), name
    poisoned = world1["nan_unguarded"]
    assert any(torch.isnan(p).any() for p in poisoned.values())


def test_gradient_checkpointing_gives_the_same_update(world1):
    _assert_same_training(world1["padded"], world1["grad_ckpt"])


def test_ppo_trains_a_critic_and_kl_starts_at_zero(world1):
    result, following = world1["ppo"]
    first = result["steps"][0]
    for key in ("train/critic-value_loss", "train/critic-value_clipfrac", "train/critic-grad_norm",
                "train/critic-lr-pg_0", "train/kl_loss", "train/pg_loss"):
        assert key in first, key
    assert first["train/kl_loss"] == pytest.approx(0.0, abs=1e-9)  # reference == actor at the first step
    assert first["train/critic-value_loss"] > 0
    assert "rollout/values" in result["rollout"] and "rollout/ref_log_probs" in result["rollout"]
    assert result["perf"]["perf/ref_log_probs_time"] > 0 and result["perf"]["perf/critic_train_time"] > 0
    assert abs(result["steps"][1]["train/kl_loss"]) > 1e-4  # the actor moved away from the reference (k1 has a sign)
    assert following["steps"][0]["train/kl_loss"] == pytest.approx(0.0, abs=1e-9)  # --ref-update-interval 1
    assert result["perf"]["perf/ref_model_update_time"] > 0


def test_profiler_writes_a_chrome_trace(world1, run_dir):
    import json

    trace = run_dir / "profile" / "rank0_step0-1.json"
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(event.get("name") == "train_actor" for event in events)
