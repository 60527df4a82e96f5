"""After a sync, the embedded engine scores a fixed batch exactly as the trainer does, in every CPU mode.

A 2-rank FSDP trainer (gloo) trains a step, pushes its weights with ``tensor``, ``distributed`` and
``disk`` in turn (a new weight version each time, small buckets so several travel), and after each one
the engine's prefill log-probs (``/generate`` with ``max_new_tokens: 0``) must equal the trainer's.
"""

from __future__ import annotations

import httpx
import pytest
import torch
from fsdp_harness import fixed_batch, make_args, new_actor, run_ranks

MODES = ("tensor", "distributed", "disk")
BATCH = dict(num_samples=4, vocab=100, seed=11)


def engine_log_probs(url: str, batch: dict) -> list[torch.Tensor]:
    """The engine's log-probs of each sample's response tokens, scored by prefill."""
    out = []
    with httpx.Client(timeout=60, trust_env=False) as client:
        for tokens, n in zip(batch["tokens"], batch["response_lengths"], strict=True):
            body = {"input_ids": tokens, "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
                    "return_logprob": True, "logprob_start_len": 0}
            meta = client.post(url + "/generate", json=body).raise_for_status().json()["meta_info"]
            out.append(torch.tensor([entry[0] for entry in meta["input_token_logprobs"][-n:]]))
    return out


def engine_version(url: str) -> str:
    return httpx.get(url + "/get_weight_version", trust_env=False).raise_for_status().json()["weight_version"]


def sync_scenario(rank: int, world: int, port: int, ckpt: str, url: str, run_dir: str) -> dict:
    args = make_args(ckpt, lr=5e-2, micro_batch_size=2, update_weight_buffer_size=64 * 1024, run_dir=run_dir)
    actor, _ = new_actor(args, rank, world, port)
    batch = fixed_batch(**BATCH)
    out: dict = {"initial_trainer": actor.compute_log_probs(batch)}
    if rank == 0:
        out["initial_engine"] = (engine_version(url), engine_log_probs(url, batch))
    for version, mode in enumerate(MODES, start=1):
        actor.train(version - 1, batch)
        actor.args.update_weight_transfer_mode = mode
        metrics = actor.update_weights([url], str(version))
        trainer = actor.compute_log_probs(batch)
        engine = (engine_version(url), engine_log_probs(url, batch)) if rank == 0 else None
        out[mode] = {"metrics": metrics, "trainer": trainer, "engine": engine}
    return out


@pytest.fixture(scope="module")
def engine(tiny_qwen3, tmp_path_factory):
    from miles_core.engines.local import start_engine

    log = tmp_path_factory.mktemp("engine") / "engine.log"
    handle = start_engine(tiny_qwen3, device="cpu", dtype="float32", random_seed=0, log_path=log)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def synced(engine, tiny_qwen3, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return run_ranks(sync_scenario, 2, str(tiny_qwen3), engine.url, str(run_dir))[0], run_dir


def test_engine_starts_with_the_trainer_weights(synced):
    out, _ = synced
    version, engine = out["initial_engine"]
    assert version == "0"
    for a, b in zip(out["initial_trainer"], engine, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_after_a_sync_the_engine_scores_like_the_trainer(synced, mode, tiny_qwen3):
    from safetensors import safe_open

    with safe_open(str(tiny_qwen3 / "model.safetensors"), "pt") as stored:
        checkpoint_bytes = sum(stored.get_tensor(k).nbytes for k in stored.keys())
    out, _ = synced
    result = out[mode]
    version, engine = result["engine"]
    assert version == str(MODES.index(mode) + 1)
    previous = out["initial_trainer"] if mode == MODES[0] else out[MODES[MODES.index(mode) - 1]]["trainer"]
    assert not torch.allclose(torch.cat(previous), torch.cat(result["trainer"]), atol=1e-4)  # the weights moved
    for trainer, served in zip(result["trainer"], engine, strict=True):
        torch.testing.assert_close(served, trainer, atol=1e-5, rtol=1e-5)
    metrics = result["metrics"]
    assert metrics["perf/update_weights_time"] > 0
    assert metrics["perf/update_weights_gb"] == pytest.approx(checkpoint_bytes / 1e9, rel=1e-6)


def test_disk_mode_leaves_one_sharded_hf_directory(synced):
    _, run_dir = synced
    written = list((run_dir / "weight_sync").iterdir())
    assert [d.name for d in written] == ["v3"]
    assert (written[0] / "model.safetensors.index.json").is_file()  # 64 KiB buckets: several shards
    assert (written[0] / "config.json").is_file() and (written[0] / "tokenizer.json").is_file()


def test_a_wrong_version_or_a_failed_update_names_the_engine(engine, synced):
    from miles_core.training.weight_sync import WeightSyncError
    from miles_core.training.weight_sync.engine_http import EngineCaller

    with EngineCaller([engine.url]) as caller:
        current = caller.weight_versions()[engine.url]
        caller.check_versions(current)
        with pytest.raises(WeightSyncError, match=f"{engine.url} reports '{current}'"):
            caller.check_versions("bogus")
        with pytest.raises(WeightSyncError, match=engine.url):
            caller.post(engine.url, "/update_weights_from_disk", {"model_path": "/nonexistent"})


def test_auto_mode_falls_back_to_disk_when_no_broadcast_group_forms(engine, synced, tiny_qwen3, tmp_path,
                                                                    monkeypatch):
    from miles_core.training.weight_sync import WeightUpdater
    from miles_core.training.weight_sync import updater as updater_module
    from miles_core.training.weight_sync.distributed_mode import GroupFormationError
    from transformers import AutoModelForCausalLM

    def no_group(*args, **kwargs):
        raise GroupFormationError("no route to the engines")

    monkeypatch.setattr(updater_module, "send_distributed", no_group)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3)  # a plain module: one rank, no process group
    updater = WeightUpdater(model, mode="auto", colocate=False, buffer_bytes=1 << 20, hf_checkpoint=str(tiny_qwen3),
                            dtype=torch.float32, device=torch.device("cpu"), master_address="127.0.0.1",
                            disk_root=tmp_path)
    for version in ("fallback-1", "fallback-2"):
        updater.update([engine.url], version)
        assert engine_version(engine.url) == version
    assert [d.name for d in tmp_path.iterdir()] == ["vfallback-2"]  # the previous directory was removed
    reference = fixed_batch(**BATCH)
    trainer_side = [lp.float() for lp in _hf_log_probs(model, reference)]
    for served, expected in zip(engine_log_probs(engine.url, reference), trainer_side, strict=True):
        torch.testing.assert_close(served, expected, atol=1e-5, rtol=1e-5)


def _hf_log_probs(model, batch):
    out = []
    with torch.no_grad():
        for tokens, n in zip(batch["tokens"], batch["response_lengths"], strict=True):
            logits = model(torch.tensor([tokens])).logits[0, -n - 1 : -1].float()
            out.append(torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[-n:])[:, None]).squeeze(-1))
    return out
