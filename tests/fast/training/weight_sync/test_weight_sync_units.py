"""Mode choice, bucketing, tied embeddings, the bucket encoding, and the SGLang tensor-mode refusal."""

from __future__ import annotations

import pytest
import torch
from miles_core.training.weight_sync import WeightSyncError, resolve_transfer_mode
from miles_core.training.weight_sync.hf_tensors import iter_buckets, iter_full_tensors
from miles_core.training.weight_sync.tensor_mode import encode_bucket


def test_auto_mode_follows_colocation_and_engine_kind():
    assert resolve_transfer_mode("auto", colocate=True, kind="embedded") == "tensor"
    assert resolve_transfer_mode("auto", colocate=False, kind="embedded") == "distributed"
    assert resolve_transfer_mode("auto", colocate=True, kind="sglang") == "disk"  # NCCL refuses one GPU twice
    assert resolve_transfer_mode("auto", colocate=False, kind="sglang") == "distributed"
    assert resolve_transfer_mode("disk", colocate=True, kind="sglang") == "disk"
    with pytest.raises(WeightSyncError, match="--update-weight-transfer-mode disk"):
        resolve_transfer_mode("tensor", colocate=True, kind="sglang")
    with pytest.raises(ValueError, match="choose one of"):
        resolve_transfer_mode("p2p", colocate=False, kind="sglang")


def test_buckets_respect_the_buffer_size_and_keep_order():
    tensors = [(f"t{i}", torch.zeros(n)) for i, n in enumerate([10, 10, 30, 5, 5])]  # float32: 4 bytes each
    buckets = list(iter_buckets(iter(tensors), max_bytes=80))
    assert [[name for name, _ in b] for b in buckets] == [["t0", "t1"], ["t2"], ["t3", "t4"]]
    with pytest.raises(ValueError):
        list(iter_buckets(iter(tensors), max_bytes=0))


def test_tied_embeddings_travel_once_under_the_checkpoint_name(tiny_qwen3):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3)
    names = [name for name, _ in iter_full_tensors(model, dtype=torch.bfloat16)]
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names
    from safetensors import safe_open

    with safe_open(str(tiny_qwen3 / "model.safetensors"), "pt") as stored:
        assert sorted(names) == sorted(stored.keys())
    assert all(t.dtype == torch.bfloat16 for _, t in iter_full_tensors(model, dtype=torch.bfloat16))


def test_encoded_bucket_is_base64_safetensors():
    import base64

    from safetensors.torch import load

    blob = encode_bucket([("a", torch.arange(3.0)), ("b", torch.ones(2, 2, dtype=torch.bfloat16))])
    restored = load(base64.b64decode(blob))
    assert torch.equal(restored["a"], torch.arange(3.0)) and restored["b"].dtype == torch.bfloat16
