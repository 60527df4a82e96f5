"""HF <-> Megatron weight mapping of every Qwen family: bit-exact round trips, coverage, streaming, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch
from miles_models_qwen.hf_parameters import iter_hf_parameters
from qwen_tiny import TINY_ARCHS, read_safetensors
from safetensors import safe_open

from miles_models_qwen import (
    IncompleteParameterError,
    MegatronLayout,
    UnknownParameterError,
    hf_to_megatron,
    megatron_to_hf,
    read_architecture,
)

LAYOUTS = {
    "local": MegatronLayout(),
    "transformer_engine": MegatronLayout(fused_layernorm=True, grouped_experts=True),
    "padded_vocab": MegatronLayout(padded_vocab_size=128),
}


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_round_trip_is_bit_exact_and_complete(perturbed_checkpoints, arch, layout_name):
    path = perturbed_checkpoints[arch]
    original = dict(read_safetensors(path))
    megatron = dict(hf_to_megatron(path, read_safetensors(path), layout=LAYOUTS[layout_name]))
    back = dict(megatron_to_hf(path, megatron.items()))

    assert sorted(back) == sorted(original), "every HF parameter comes back, and nothing else"
    for name, tensor in original.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name
    # Every Megatron tensor was used: converting each alone gives at least one HF tensor.
    for name, tensor in megatron.items():
        assert list(megatron_to_hf(path, [(name, tensor)])), name


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_megatron_names_follow_the_layout(tiny_checkpoints, arch):
    path = tiny_checkpoints[arch]
    local = set(dict(hf_to_megatron(path, read_safetensors(path))))
    fused = set(dict(hf_to_megatron(path, read_safetensors(path), layout=LAYOUTS["transformer_engine"])))
    assert "decoder.layers.0.input_layernorm.weight" in local
    assert "decoder.layers.0.self_attention.linear_qkv.layer_norm_weight" in fused
    arch_info = read_architecture(path)
    if arch_info.family.moe:
        assert "decoder.layers.0.mlp.experts.local_experts.1.linear_fc1.weight" in local
        assert "decoder.layers.0.mlp.experts.linear_fc1.weight1" in fused
        assert "decoder.layers.0.pre_mlp_layernorm.weight" in fused  # MoE layers keep a separate norm
    else:
        assert "decoder.layers.0.mlp.linear_fc1.layer_norm_weight" in fused
    assert MegatronLayout.from_names(fused) == MegatronLayout(fused_layernorm=True, grouped_experts=arch_info.family.moe)
    assert MegatronLayout.from_names(local) == MegatronLayout()
    tied = arch_info.tie_word_embeddings
    assert ("output_layer.weight" in local) == (not tied)


def test_fused_qkv_is_grouped_by_key_value_head(tiny_checkpoints):
    """Rows of linear_qkv: for each KV group, its query heads, then its key head, then its value head."""
    path = tiny_checkpoints["qwen2"]
    arch = read_architecture(path)
    hf = dict(read_safetensors(path))
    megatron = dict(hf_to_megatron(path, hf.items()))
    hd, per_group = arch.head_dim, arch.heads_per_group
    qkv = megatron["decoder.layers.1.self_attention.linear_qkv.weight"]
    bias = megatron["decoder.layers.1.self_attention.linear_qkv.bias"]
    q, k, v = (hf[f"model.layers.1.self_attn.{p}_proj.weight"] for p in "qkv")
    q_bias = hf["model.layers.1.self_attn.q_proj.bias"]
    group_rows = (per_group + 2) * hd
    for group in range(arch.num_key_value_heads):
        block = qkv[group * group_rows:(group + 1) * group_rows]
        assert torch.equal(block[:per_group * hd], q[group * per_group * hd:(group + 1) * per_group * hd])
        assert torch.equal(block[per_group * hd:(per_group + 1) * hd], k[group * hd:(group + 1) * hd])
        assert torch.equal(block[(per_group + 1) * hd:], v[group * hd:(group + 1) * hd])
        assert torch.equal(bias[group * group_rows:group * group_rows + per_group * hd],
                           q_bias[group * per_group * hd:(group + 1) * per_group * hd])
    fc1 = megatron["decoder.layers.0.mlp.linear_fc1.weight"]
    assert torch.equal(fc1[:arch.intermediate_size], hf["model.layers.0.mlp.gate_proj.weight"])
    assert torch.equal(fc1[arch.intermediate_size:], hf["model.layers.0.mlp.up_proj.weight"])


@pytest.mark.parametrize("arch", ["qwen3_moe", "qwen2_moe", "qwen3"])
def test_transformers_in_memory_state_dict_converts_like_the_hub_files(perturbed_checkpoints, arch):
    """transformers 5 keeps experts as 3-D gate_up_proj/down_proj and repeats tied lm_head in state_dict()."""
    from transformers import AutoModelForCausalLM

    path = perturbed_checkpoints[arch]
    model = AutoModelForCausalLM.from_pretrained(path)
    from_files = dict(hf_to_megatron(path, read_safetensors(path)))
    from_memory = dict(hf_to_megatron(model.config, model.state_dict().items()))
    assert sorted(from_memory) == sorted(from_files)
    for name, tensor in from_files.items():
        assert torch.equal(from_memory[name], tensor), name


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_conversion_streams_one_layer_at_a_time(tiny_checkpoints, arch):
    """Everything of layer i is emitted before the converter reads anything of layer i + 1."""
    path = tiny_checkpoints[arch]
    layer_of = re.compile(r"(?:model|decoder)\.layers\.(\d+)\.")
    highest_layer_read = [-1]

    def reading() -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in read_safetensors(path):
            if match := layer_of.match(name):
                highest_layer_read[0] = max(highest_layer_read[0], int(match.group(1)))
            yield name, tensor

    for name, _ in hf_to_megatron(path, reading()):
        if match := layer_of.match(name):
            assert int(match.group(1)) == highest_layer_read[0], f"{name} was held back past its layer"


def test_unknown_names_are_errors_naming_the_parameter(tiny_checkpoints):
    path = tiny_checkpoints["qwen2"]
    weight = torch.zeros(16)
    with pytest.raises(UnknownParameterError, match=r"model\.layers\.0\.self_attn\.q_norm\.weight.*no q/k norm"):
        list(hf_to_megatron(path, [("model.layers.0.self_attn.q_norm.weight", weight)]))
    with pytest.raises(UnknownParameterError, match=r"model\.layers\.7\.input_layernorm\.weight"):
        list(hf_to_megatron(path, [("model.layers.7.input_layernorm.weight", torch.zeros(64))]))
    with pytest.raises(UnknownParameterError, match=r"vision_tower\.patch_embed"):
        list(hf_to_megatron(path, [("vision_tower.patch_embed", weight)]))
    with pytest.raises(UnknownParameterError, match=r"decoder\.layers\.0\.mlp\.router\.weight"):
        list(megatron_to_hf(path, [("decoder.layers.0.mlp.router.weight", torch.zeros(4, 64))]))
    with pytest.raises(UnknownParameterError, match=r"decoder\.layers\.0\.self_attention\.dense\.weight"):
        list(megatron_to_hf(path, [("decoder.layers.0.self_attention.dense.weight", torch.zeros(64, 64))]))


def test_shape_mismatch_and_incomplete_fusions_are_errors(tiny_checkpoints):
    path = tiny_checkpoints["qwen3"]
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_proj\.weight.*shape"):
        list(hf_to_megatron(path, [("model.layers.0.self_attn.k_proj.weight", torch.zeros(3, 64))]))
    parts = [(name, tensor) for name, tensor in read_safetensors(path) if not name.endswith("v_proj.weight")]
    with pytest.raises(IncompleteParameterError, match=r"linear_qkv\.weight.*lacks \['v'\]"):
        list(hf_to_megatron(path, parts))


def test_megatron_wrapper_prefixes_and_extra_state_are_handled(tiny_checkpoints):
    path = tiny_checkpoints["qwen3"]
    megatron = list(hf_to_megatron(path, read_safetensors(path)))
    wrapped = [(f"module.module.{name}", tensor) for name, tensor in megatron]
    wrapped.append(("module.decoder.layers.0.self_attention.linear_qkv._extra_state", None))
    assert [n for n, _ in megatron_to_hf(path, wrapped)] == [n for n, _ in megatron_to_hf(path, megatron)]


def test_inventory_matches_save_pretrained(tiny_checkpoints):
    """The parameter inventory (used by the mapping and the writer) is what transformers itself saves."""
    from transformers import AutoModelForCausalLM

    for arch, path in tiny_checkpoints.items():
        model = AutoModelForCausalLM.from_pretrained(path)
        saved = path.parent / f"{arch}-resaved"
        model.save_pretrained(saved)
        with safe_open(str(saved / "model.safetensors"), framework="pt") as handle:
            names = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        expected = {p.name: p.shape for p in iter_hf_parameters(read_architecture(path))}
        assert names == expected, arch
