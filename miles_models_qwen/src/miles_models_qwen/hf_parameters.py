"""The parameters of a Qwen HF checkpoint as stored on the hub: names, shapes and how HF initialises them.

One inventory serves three purposes: writing random-init checkpoints tensor by tensor (no model object,
so a 30B shape never needs 30B floats of memory), counting parameters for ``miles models list``, and
checking in tests that the HF<->Megatron mapping leaves no parameter out.

Names follow the hub's safetensors layout (``model.layers.{i}.mlp.experts.{e}.gate_proj.weight``, one
tensor per expert), which is what ``save_pretrained`` writes and SGLang loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from miles_models_qwen.architecture import QwenArchitecture

__all__ = ["HFParameter", "iter_hf_parameters", "count_parameters"]

Init = Literal["normal", "ones", "zeros"]


@dataclass(frozen=True)
class HFParameter:
    name: str
    shape: tuple[int, ...]
    init: Init  # HF's _init_weights: linear/embedding weights normal(0, initializer_range), norms 1, biases 0

    @property
    def numel(self) -> int:
        total = 1
        for dim in self.shape:
            total *= dim
        return total


def _layer_parameters(arch: QwenArchitecture, layer: int) -> Iterator[HFParameter]:
    prefix = f"model.layers.{layer}"
    hidden, head_dim = arch.hidden_size, arch.head_dim
    q_rows, kv_rows = arch.num_attention_heads * head_dim, arch.num_key_value_heads * head_dim
    yield HFParameter(f"{prefix}.input_layernorm.weight", (hidden,), "ones")
    for proj, rows in (("q_proj", q_rows), ("k_proj", kv_rows), ("v_proj", kv_rows)):
        yield HFParameter(f"{prefix}.self_attn.{proj}.weight", (rows, hidden), "normal")
        if arch.qkv_bias:
            yield HFParameter(f"{prefix}.self_attn.{proj}.bias", (rows,), "zeros")
    yield HFParameter(f"{prefix}.self_attn.o_proj.weight", (hidden, q_rows), "normal")
    if arch.family.qk_norm:
        yield HFParameter(f"{prefix}.self_attn.q_norm.weight", (head_dim,), "ones")
        yield HFParameter(f"{prefix}.self_attn.k_norm.weight", (head_dim,), "ones")
    yield HFParameter(f"{prefix}.post_attention_layernorm.weight", (hidden,), "ones")
    if not arch.is_moe_layer(layer):
        yield from _mlp(f"{prefix}.mlp", hidden, arch.intermediate_size)
        return
    yield HFParameter(f"{prefix}.mlp.gate.weight", (arch.num_experts, hidden), "normal")
    for expert in range(arch.num_experts):
        yield from _mlp(f"{prefix}.mlp.experts.{expert}", hidden, arch.moe_intermediate_size)
    if arch.family.shared_expert:
        yield from _mlp(f"{prefix}.mlp.shared_expert", hidden, arch.shared_expert_intermediate_size)
        yield HFParameter(f"{prefix}.mlp.shared_expert_gate.weight", (1, hidden), "normal")


def _mlp(prefix: str, hidden: int, width: int) -> Iterator[HFParameter]:
    yield HFParameter(f"{prefix}.gate_proj.weight", (width, hidden), "normal")
    yield HFParameter(f"{prefix}.up_proj.weight", (width, hidden), "normal")
    yield HFParameter(f"{prefix}.down_proj.weight", (hidden, width), "normal")


def iter_hf_parameters(arch: QwenArchitecture) -> Iterator[HFParameter]:
    """Every stored parameter, embeddings first, layer by layer, then the final norm and ``lm_head``.

    With tied embeddings there is no ``lm_head.weight`` (``save_pretrained`` does not store it either).
    """
    yield HFParameter("model.embed_tokens.weight", (arch.vocab_size, arch.hidden_size), "normal")
    for layer in range(arch.num_layers):
        yield from _layer_parameters(arch, layer)
    yield HFParameter("model.norm.weight", (arch.hidden_size,), "ones")
    if not arch.tie_word_embeddings:
        yield HFParameter("lm_head.weight", (arch.vocab_size, arch.hidden_size), "normal")


def count_parameters(arch: QwenArchitecture) -> tuple[int, int]:
    """``(total, active)``: all parameters, and those one token uses (a MoE token sees top-k experts)."""
    total = routed = 0
    for param in iter_hf_parameters(arch):
        total += param.numel
        if ".mlp.experts." in param.name:
            routed += param.numel
    active = total - routed + (routed * arch.num_experts_per_token // arch.num_experts if routed else 0)
    return total, active
