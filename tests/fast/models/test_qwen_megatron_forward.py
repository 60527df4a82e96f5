"""megatron-core GPTModel (local spec, CPU) built from converted tiny Qwen weights gives HF's logits.

One module-scoped set-up (megatron import, gloo world of size 1, the test-only CUDA->CPU shim) serves
every family. Tolerance: float32 on both sides, so logits agree to 1e-4 absolute (observed ~1e-6).
"""

from __future__ import annotations

import argparse

import pytest
import torch
from megatron_cpu import megatron_on_cpu
from qwen_tiny import TINY_ARCHS, read_safetensors

LOGITS_ATOL = 1e-4

CPU_RUN_SETTINGS = dict(
    use_cpu_initialization=True, params_dtype=torch.float32, bias_dropout_fusion=False, apply_rope_fusion=False,
    masked_softmax_fusion=False, gradient_accumulation_fusion=False, persist_layer_norm=False,
)


@pytest.fixture(scope="module")
def megatron_world():
    pytest.importorskip("megatron.core")
    with megatron_on_cpu(seed=0):
        yield


@pytest.fixture(scope="module")
def plugin_specs():
    from miles_core.plugins.manager import MilesPluginManager

    from miles_models_qwen import plugin

    pm = MilesPluginManager()
    pm.register_plugin(plugin, "models_qwen")
    return pm.registry("model_specs")


def build_gpt_model(spec, hf_dir):
    from megatron.core.models.gpt import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig

    run_settings = dict(CPU_RUN_SETTINGS)
    kwargs = spec.transformer_config(hf_dir)
    if kwargs.get("num_moe_experts"):
        run_settings["moe_token_dispatcher_type"] = "allgather"  # alltoall needs CUDA streams
    config = TransformerConfig(**kwargs, **run_settings)
    layer_spec = spec.layer_spec(argparse.Namespace(transformer_impl="local"), config)
    return GPTModel(config, layer_spec, **spec.gpt_model_kwargs(hf_dir))


def megatron_logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    batch, length = input_ids.shape
    position_ids = torch.arange(length).unsqueeze(0).expand(batch, -1)
    causal_mask = torch.ones(length, length, dtype=torch.bool).triu(1).view(1, 1, length, length)
    return model(input_ids, position_ids, causal_mask)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_megatron_logits_match_hf(megatron_world, plugin_specs, perturbed_checkpoints, arch):
    from transformers import AutoModelForCausalLM

    hf_dir = perturbed_checkpoints[arch]
    spec = plugin_specs.get(arch)
    model = build_gpt_model(spec, hf_dir).eval()

    converted = dict(spec.hf_to_megatron(hf_dir, read_safetensors(hf_dir)))
    model_names = {name for name in model.state_dict() if not name.endswith("_extra_state")}
    assert set(converted) == model_names, "the mapping gives exactly the parameters the Megatron model has"
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not unexpected and all(name.endswith("_extra_state") for name in missing)

    hf_model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    input_ids = torch.randint(0, hf_model.config.vocab_size, (3, 17), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = hf_model(input_ids).logits
        actual = megatron_logits(model, input_ids)
    assert actual.shape == expected.shape
    max_abs_diff = (actual - expected).abs().max().item()
    print(f"{arch}: max |megatron - hf| logits = {max_abs_diff:.2e}")
    assert max_abs_diff < LOGITS_ATOL
    assert torch.equal(actual.argmax(-1), expected.argmax(-1))

    # And back: the live model's weights export to the original HF tensors, bit for bit.
    exported = dict(spec.megatron_to_hf(hf_dir, model.state_dict().items()))
    original = dict(read_safetensors(hf_dir))
    assert sorted(exported) == sorted(original)
    assert all(torch.equal(exported[name], tensor) for name, tensor in original.items())


@pytest.mark.parametrize("arch, preset", [("qwen3", "0.6b"), ("qwen3", "1.7b"), ("qwen2", "0.5b"), ("qwen2", "1.5b"),
                                          ("qwen3_moe", "a3b-mini"), ("qwen3_moe", "30b-a3b")])
def test_released_shapes_give_valid_megatron_configs(megatron_world, arch, preset):
    """megatron-core's own validation accepts the settings of every real-shape preset."""
    from megatron.core.transformer.transformer_config import TransformerConfig
    from miles_models_qwen.presets import preset_hf_config

    from miles_models_qwen import transformer_config

    config = TransformerConfig(**transformer_config(preset_hf_config(arch, preset)), **CPU_RUN_SETTINGS)
    assert config.num_query_groups < config.num_attention_heads
