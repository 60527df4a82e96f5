"""Set-up of the FSDP backend: plugin registration, flag checks, the attention fallback."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest
import torch


def test_fsdp_is_registered_and_implements_the_train_actor_protocol():
    from miles_core.plugins.manager import build_plugin_manager
    from miles_core.training.actor import TrainActor

    pm = build_plugin_manager()
    spec = pm.get("train_backends", "fsdp", flag="--train-backend")
    assert pm.provenance("train_backends", "fsdp").distribution == "miles-core"
    module, _, name = spec.actor_class.partition(":")
    actor_class = getattr(importlib.import_module(module), name)
    assert isinstance(actor_class(argparse.Namespace(), 0, 1), TrainActor)


def test_the_plugin_module_does_not_import_torch():
    code = "import sys, miles_core.training.backends_plugin; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


def test_flag_checks_fail_fast_with_the_flag_name():
    from miles_core.training.fsdp.flags import with_fsdp_defaults

    with pytest.raises(ValueError, match="--hf-checkpoint"):
        with_fsdp_defaults(argparse.Namespace())
    with pytest.raises(ValueError, match="--max-tokens-per-gpu"):
        with_fsdp_defaults(argparse.Namespace(hf_checkpoint="m", use_dynamic_batch_size=True))
    with pytest.raises(ValueError, match="--context-parallel-size"):
        with_fsdp_defaults(argparse.Namespace(hf_checkpoint="m", context_parallel_size=2))
    filled = with_fsdp_defaults(argparse.Namespace(hf_checkpoint="m", lr=3e-6))
    assert filled.lr == 3e-6 and filled.adam_beta2 == 0.98 and filled.update_weight_buffer_size == 512 * 1024**2


def test_flash_attention_falls_back_to_varlen_sdpa_on_cpu_with_a_warning():
    from miles_core.training.fsdp.model import resolve_attn_implementation
    from miles_core.training.fsdp.varlen_attention import VARLEN_SDPA

    with pytest.warns(UserWarning, match="falling back to sdpa"):
        assert resolve_attn_implementation("flash_attention_2", torch.device("cpu")) == VARLEN_SDPA
    assert resolve_attn_implementation("eager", torch.device("cpu")) == "eager"
    with pytest.raises(ValueError, match="--attn-implementation"):
        resolve_attn_implementation("xformers", torch.device("cpu"))


def test_varlen_sdpa_equals_a_block_diagonal_mask():
    from types import SimpleNamespace

    from miles_core.training.fsdp.varlen_attention import _varlen_sdpa_forward

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 7, 4) for _ in range(3))
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0, 1]])
    out, _ = _varlen_sdpa_forward(SimpleNamespace(is_causal=True), q, k, v, None, position_ids=position_ids)
    segment = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    mask = (segment[:, None] == segment[None, :]) & torch.ones(7, 7, dtype=torch.bool).tril()
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
    torch.testing.assert_close(out, expected)
