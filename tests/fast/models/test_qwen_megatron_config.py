"""Megatron settings derived from HF configs of the released shapes (what Miles's model scripts hard-code)."""

from __future__ import annotations

import argparse

import pytest
from miles_models_qwen.megatron_config import use_transformer_engine
from miles_models_qwen.presets import preset_hf_config

from miles_models_qwen import gpt_model_kwargs, read_architecture, transformer_config


def test_qwen3_dense_matches_the_megatron_flags_of_qwen3():
    hf = preset_hf_config("qwen3", "0.6b")
    kwargs = transformer_config(hf)
    assert kwargs["num_layers"] == 28 and kwargs["hidden_size"] == 1024 and kwargs["ffn_hidden_size"] == 3072
    assert kwargs["num_attention_heads"] == 16 and kwargs["num_query_groups"] == 8 and kwargs["kv_channels"] == 128
    assert kwargs["qk_layernorm"] is True and kwargs["add_qkv_bias"] is False and kwargs["add_bias_linear"] is False
    assert kwargs["normalization"] == "RMSNorm" and kwargs["layernorm_epsilon"] == 1e-6
    assert kwargs["gated_linear_unit"] is True and kwargs["activation_func"].__name__ == "silu"
    assert "num_moe_experts" not in kwargs
    model = gpt_model_kwargs(hf)
    assert model == dict(vocab_size=151936, max_sequence_length=40960, position_embedding_type="rope",
                         rotary_base=1_000_000.0, rotary_percent=1.0, share_embeddings_and_output_weights=True)


def test_qwen2_has_qkv_bias_and_no_qk_norm():
    kwargs = transformer_config(preset_hf_config("qwen2", "0.5b"))
    assert kwargs["add_qkv_bias"] is True and kwargs["qk_layernorm"] is False
    assert kwargs["num_query_groups"] == 2 and kwargs["kv_channels"] == 64  # 896 / 14 heads


def test_qwen3_moe_routing():
    kwargs = transformer_config(preset_hf_config("qwen3_moe", "30b-a3b"))
    assert kwargs["num_moe_experts"] == 128 and kwargs["moe_router_topk"] == 8
    assert kwargs["moe_ffn_hidden_size"] == 768 and kwargs["ffn_hidden_size"] == 6144
    assert kwargs["moe_router_pre_softmax"] is False  # norm_topk_prob: softmax over the top-k logits
    assert kwargs["moe_router_score_function"] == "softmax" and kwargs["moe_aux_loss_coeff"] == 0.001
    assert kwargs["moe_layer_freq"] == 1 and "moe_shared_expert_intermediate_size" not in kwargs
    assert gpt_model_kwargs(preset_hf_config("qwen3_moe", "30b-a3b"))["share_embeddings_and_output_weights"] is False


def test_qwen2_moe_shared_expert_and_dense_layers():
    hf = {**preset_hf_config("qwen2_moe", "tiny"), "mlp_only_layers": [0], "num_hidden_layers": 3}
    kwargs = transformer_config(hf)
    assert kwargs["moe_shared_expert_intermediate_size"] == 64 and kwargs["moe_shared_expert_gate"] is True
    assert kwargs["moe_router_pre_softmax"] is True  # norm_topk_prob=false: top-k of the full softmax
    assert kwargs["moe_layer_freq"] == [0, 1, 1]
    assert read_architecture(hf).moe_layers == (False, True, True)


def test_hub_and_transformers_spellings_read_alike():
    hub = {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "vocab_size": 100, "hidden_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
           "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 8, "num_experts_per_tok": 2,
           "rope_theta": 1e6}
    in_memory = {k: v for k, v in hub.items() if k not in ("num_experts", "rope_theta")}
    in_memory.update(num_local_experts=8, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    assert read_architecture(hub) == read_architecture(in_memory)


@pytest.mark.parametrize("change, message", [
    ({"use_sliding_window": True}, "use_sliding_window"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope type 'yarn'"),
    ({"attention_bias": True}, "attention_bias=true"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"num_key_value_heads": 3}, "not a multiple"),
])
def test_unsupported_features_are_errors_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        transformer_config({**preset_hf_config("qwen3", "tiny"), **change})


def test_transformer_impl_selection():
    assert use_transformer_engine(argparse.Namespace(transformer_impl="local")) is False
    assert use_transformer_engine(argparse.Namespace(transformer_impl="transformer_engine")) is True
    with pytest.raises(ValueError, match="--transformer-impl"):
        use_transformer_engine(argparse.Namespace(transformer_impl="te"))
