"""The FSDP backend on one CUDA GPU: NCCL group, bf16 compute over float32 masters, offload/onload for
colocation, CPU-offloaded FSDP, checkpoints, HF export, and weight sync to engines on CPU and on the GPU.

Run on a GPU machine: ``pytest tests/fast-gpu/training/test_fsdp_gpu.py``.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fast" / "training" / "fsdp"))
from fsdp_harness import fixed_batch, full_state, make_args, new_actor, run_ranks  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

BATCH = dict(num_samples=8, vocab=100, seed=5)


def _engine_log_probs(url: str, batch: dict) -> list[torch.Tensor]:
    import httpx

    out = []
    with httpx.Client(timeout=120, trust_env=False) as client:
        for tokens, n in zip(batch["tokens"], batch["response_lengths"], strict=True):
            body = {"input_ids": tokens, "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
                    "return_logprob": True, "logprob_start_len": 0}
            meta = client.post(url + "/generate", json=body).raise_for_status().json()["meta_info"]
            out.append(torch.tensor([e[0] for e in meta["input_token_logprobs"][-n:]]))
    return out


def _reference_log_probs(hf_dir: str, batch: dict, device: str) -> list[torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).to(device).eval()
    out = []
    with torch.no_grad():
        for tokens, n in zip(batch["tokens"], batch["response_lengths"], strict=True):
            logits = model(torch.tensor([tokens], device=device)).logits[0, -n - 1 : -1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[-n:], device=device)[:, None])
            out.append(lp.squeeze(-1).cpu())
    return out


def gpu_scenarios(rank: int, world: int, port: int, ckpt: str, workdir: str, cpu_url: str, gpu_url: str) -> dict:
    batch = fixed_batch(**BATCH)
    out: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        actor, _ = new_actor(make_args(ckpt, attn_implementation="flash_attention_2", micro_batch_size=4,
                                       save=f"{workdir}/ckpt", lr=1e-2), rank, world, port)
    out["attn_warning"] = [str(w.message) for w in caught if "flash_attention_2" in str(w.message)]
    out["device"] = str(actor.device)
    out["param_dtype"] = str(next(actor.actor.model.parameters()).dtype)
    out["train"] = actor.train(0, batch)
    out["packed_vs_padded"] = (
        new_actor(make_args(ckpt, use_dynamic_batch_size=True, max_tokens_per_gpu=64), rank, world, port)[0]
        .compute_log_probs(batch),
        new_actor(make_args(ckpt, micro_batch_size=3), rank, world, port)[0].compute_log_probs(batch),
        _reference_log_probs(ckpt, batch, "cuda"),
    )

    def placement():
        tensors = [p.to_local() for p in actor.actor.model.parameters()] + [
            v.to_local() if hasattr(v, "to_local") else v for state in actor.actor.optimizer.state.values()
            for k, v in state.items() if torch.is_tensor(v) and k != "step"]
        return {t.device.type for t in tensors}, sum(t.numel() * t.element_size() for t in tensors)

    import gc

    gc.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    actor.offload()
    offloaded, (devices_off, state_bytes) = torch.cuda.memory_allocated(), placement()
    actor.onload()
    out["offload"] = (before, offloaded, torch.cuda.memory_allocated(), state_bytes, devices_off, placement()[0])
    out["after_onload"] = actor.train(1, batch)

    path = actor.save(1)
    saved = full_state(actor.actor.model)
    resumed, next_id = new_actor(make_args(ckpt, load=f"{workdir}/ckpt", micro_batch_size=4), rank, world, port)
    out["resume"] = (path, next_id, saved, full_state(resumed.actor.model))

    hf_dir = actor.export_hf(f"{workdir}/hf")
    out["reference_after_training"] = _reference_log_probs(hf_dir, batch, "cpu")
    syncs = {}
    for url, modes in ((cpu_url, ("distributed", "tensor", "disk")), (gpu_url, ("tensor", "disk"))):
        for mode in modes:
            actor.args.update_weight_transfer_mode = mode
            version = f"{mode}-{'cpu' if url == cpu_url else 'gpu'}"
            metrics = actor.update_weights([url], version)
            syncs[version] = (metrics, _engine_log_probs(url, batch))
    out["syncs"] = syncs

    offloaded_fsdp, _ = new_actor(make_args(ckpt, fsdp_cpu_offload=True, micro_batch_size=4), rank, world, port)
    out["fsdp_cpu_offload"] = (offloaded_fsdp.train(0, batch),
                               str(next(offloaded_fsdp.actor.model.parameters()).device))
    return out


@pytest.fixture(scope="module")
def results(tiny_qwen3, tmp_path_factory):
    from miles_core.engines.local import start_engine

    workdir = tmp_path_factory.mktemp("gpu")
    with start_engine(tiny_qwen3, device="cpu", dtype="float32", random_seed=0, log_path=workdir / "cpu.log") as cpu, \
            start_engine(tiny_qwen3, device="cuda", dtype="float32", random_seed=0,
                         log_path=workdir / "gpu.log") as gpu:
        return run_ranks(gpu_scenarios, 1, str(tiny_qwen3), str(workdir), cpu.url, gpu.url)[0]


def test_trains_on_cuda_with_bf16_compute_and_fp32_masters(results):
    assert results["device"].startswith("cuda")
    assert results["param_dtype"] == "torch.float32"
    assert results["attn_warning"] == [] or "falling back to sdpa" in results["attn_warning"][0]
    for row in results["train"]["steps"] + results["after_onload"]["steps"]:
        assert math.isfinite(row["train/loss"]) and row["train/grad_norm"] > 0


def test_packed_and_padded_log_probs_agree_on_gpu(results):
    packed, padded, truth = results["packed_vs_padded"]
    for a, b, t in zip(packed, padded, truth, strict=True):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=0)  # bf16 compute, different kernels
        torch.testing.assert_close(a, t, atol=5e-2, rtol=0)


def test_offload_frees_the_gpu_and_onload_restores_it(results):
    before, offloaded, after, state_bytes, devices_off, devices_on = results["offload"]
    assert devices_off == {"cpu"} and devices_on == {"cuda"}  # weights and Adam moments moved, both ways
    assert before - offloaded >= 0.9 * state_bytes
    assert after - offloaded >= 0.9 * state_bytes


def test_checkpoint_round_trip_on_gpu(results):
    path, next_id, saved, loaded = results["resume"]
    assert path.endswith("iter_0000002") and next_id == 2
    for name in saved:
        torch.testing.assert_close(saved[name], loaded[name], atol=0, rtol=0, msg=name)


@pytest.mark.parametrize("version", ["distributed-cpu", "tensor-cpu", "disk-cpu", "tensor-gpu", "disk-gpu"])
def test_engines_serve_the_trained_weights_after_each_sync(results, version):
    metrics, served = results["syncs"][version]
    assert metrics["perf/update_weights_gb"] > 0
    for got, want in zip(served, results["reference_after_training"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_fsdp_cpu_offload_trains(results):
    result, device = results["fsdp_cpu_offload"]
    assert device == "cpu"
    assert all(math.isfinite(r["train/loss"]) for r in result["steps"])
