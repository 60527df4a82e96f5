"""Which Megatron parameter names a model uses: they differ between the local and the TE layer specs.

- The Transformer Engine spec fuses the pre-attention and pre-MLP norms into the next linear layer
  (``self_attention.linear_qkv.layer_norm_weight``, ``mlp.linear_fc1.layer_norm_weight``; MoE layers keep
  a separate ``pre_mlp_layernorm``), where the local spec has ``input_layernorm``/``pre_mlp_layernorm``.
- Experts are ``mlp.experts.local_experts.{e}.linear_fc1.weight`` (``SequentialMLP``, the local spec) or
  ``mlp.experts.linear_fc1.weight{e}`` (``TEGroupedMLP``, TE with ``--moe-grouped-gemm``).
- Megatron may pad the vocabulary (``--make-vocab-size-divisible-by`` x TP) beyond the HF ``vocab_size``.

``megatron_to_hf`` accepts every spelling; ``hf_to_megatron`` writes the one a :class:`MegatronLayout`
names. Build it from the model you load into with :meth:`MegatronLayout.from_names`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MegatronLayout"]


@dataclass(frozen=True)
class MegatronLayout:
    fused_layernorm: bool = False  # TE spec: norms live inside linear_qkv / linear_fc1
    grouped_experts: bool = False  # TEGroupedMLP: experts.linear_fc1.weight{e}
    padded_vocab_size: int | None = None  # rows of Megatron's embedding/output layer, if padded

    @classmethod
    def from_names(cls, names: Iterable[str], padded_vocab_size: int | None = None) -> MegatronLayout:
        """The layout a model uses, read from its ``state_dict()`` or ``named_parameters()`` names."""
        names = list(names)
        return cls(
            fused_layernorm=any(n.endswith("linear_qkv.layer_norm_weight") for n in names),
            grouped_experts=any(".mlp.experts.linear_fc1.weight" in n for n in names),
            padded_vocab_size=padded_vocab_size,
        )

    def attention_norm(self, layer: int) -> str:
        if self.fused_layernorm:
            return f"decoder.layers.{layer}.self_attention.linear_qkv.layer_norm_weight"
        return f"decoder.layers.{layer}.input_layernorm.weight"

    def mlp_norm(self, layer: int, moe_layer: bool) -> str:
        if self.fused_layernorm and not moe_layer:
            return f"decoder.layers.{layer}.mlp.linear_fc1.layer_norm_weight"
        return f"decoder.layers.{layer}.pre_mlp_layernorm.weight"

    def expert_linear(self, layer: int, expert: int, fc: int) -> str:
        if self.grouped_experts:
            return f"decoder.layers.{layer}.mlp.experts.linear_fc{fc}.weight{expert}"
        return f"decoder.layers.{layer}.mlp.experts.local_experts.{expert}.linear_fc{fc}.weight"
