"""Stream Megatron-core Qwen weights out as HF tensors, splitting QKV and gate/up on the way.

Each Megatron tensor becomes one or more HF tensors at once, so nothing is buffered: the trainer can
push weights to rollout engines (or write an HF checkpoint) bucket by bucket. Output names are the
hub's (one tensor per expert), which is what ``save_pretrained`` writes and SGLang loads.

Input names are those of a full model (TP-gathered tensors, global layer and expert numbers): every
spelling of the local and the Transformer Engine specs is accepted (see ``megatron_layout``), leading
``module.`` prefixes of DDP/Float16 wrappers are dropped, and ``_extra_state`` entries (TE's FP8
metadata, not weights) are skipped. A padded vocabulary is cut back to the HF ``vocab_size``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from miles_models_qwen.architecture import QwenArchitecture, QwenFamily, read_architecture
from miles_models_qwen.fused_tensors import split_gate_up, split_qkv
from miles_models_qwen.hf_parameters import iter_hf_parameters
from miles_models_qwen.mapping_errors import UnknownParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["megatron_to_hf"]

_LAYER = re.compile(r"decoder\.layers\.(\d+)\.(.+)")
_QK_NORM = re.compile(r"self_attention\.([qk])_layernorm\.weight")
_LOCAL_EXPERT = re.compile(r"mlp\.experts\.local_experts\.(\d+)\.linear_fc([12])\.weight")
_GROUPED_EXPERT = re.compile(r"mlp\.experts\.linear_fc([12])\.weight(\d+)")
_SHARED = re.compile(r"mlp\.shared_experts\.linear_fc([12])\.weight")
_PLAIN_RENAMES = {
    "input_layernorm.weight": "input_layernorm.weight",
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "pre_mlp_layernorm.weight": "post_attention_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "post_attention_layernorm.weight",
    "self_attention.linear_proj.weight": "self_attn.o_proj.weight",
    "mlp.linear_fc2.weight": "mlp.down_proj.weight",
    "mlp.router.weight": "mlp.gate.weight",
    "mlp.shared_experts.gate_weight": "mlp.shared_expert_gate.weight",
}


class _Converter:
    def __init__(self, arch: QwenArchitecture):
        self.arch = arch
        self.expected = {p.name: p.shape for p in iter_hf_parameters(arch)}

    def convert(self, megatron_name: str, tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        name = megatron_name
        while name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("_extra_state"):
            return
        if name == "embedding.word_embeddings.weight":
            yield from self._checked(megatron_name, [("model.embed_tokens.weight", self._unpad_vocab(tensor))])
        elif name == "output_layer.weight":
            if not self.arch.tie_word_embeddings:  # tied: a copy of the embedding (last pipeline stage)
                yield from self._checked(megatron_name, [("lm_head.weight", self._unpad_vocab(tensor))])
        elif name == "decoder.final_layernorm.weight":
            yield from self._checked(megatron_name, [("model.norm.weight", tensor)])
        elif match := _LAYER.fullmatch(name):
            layer, suffix = int(match.group(1)), match.group(2)
            yield from self._checked(megatron_name, self._convert_layer(megatron_name, layer, suffix, tensor))
        else:
            raise UnknownParameterError(self._unknown(megatron_name))

    def _convert_layer(self, megatron_name: str, layer: int, suffix: str, tensor: torch.Tensor
                       ) -> list[tuple[str, torch.Tensor]]:
        arch = self.arch
        out = f"model.layers.{layer}"
        if suffix in _PLAIN_RENAMES:
            return [(f"{out}.{_PLAIN_RENAMES[suffix]}", tensor)]
        if suffix in ("self_attention.linear_qkv.weight", "self_attention.linear_qkv.bias"):
            kind = suffix.rsplit(".", 1)[1]
            q, k, v = split_qkv(tensor, arch.num_key_value_heads, arch.heads_per_group, arch.head_dim)
            return [(f"{out}.self_attn.q_proj.{kind}", q), (f"{out}.self_attn.k_proj.{kind}", k),
                    (f"{out}.self_attn.v_proj.{kind}", v)]
        if match := _QK_NORM.fullmatch(suffix):
            return [(f"{out}.self_attn.{match.group(1)}_norm.weight", tensor)]
        if suffix == "mlp.linear_fc1.weight":
            return self._mlp(f"{out}.mlp", "1", tensor)
        if match := _LOCAL_EXPERT.fullmatch(suffix):
            return self._mlp(f"{out}.mlp.experts.{int(match.group(1))}", match.group(2), tensor)
        if match := _GROUPED_EXPERT.fullmatch(suffix):
            return self._mlp(f"{out}.mlp.experts.{int(match.group(2))}", match.group(1), tensor)
        if match := _SHARED.fullmatch(suffix):
            return self._mlp(f"{out}.mlp.shared_expert", match.group(1), tensor)
        raise UnknownParameterError(self._unknown(megatron_name))

    @staticmethod
    def _mlp(prefix: str, fc: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        if fc == "2":
            return [(f"{prefix}.down_proj.weight", tensor)]
        gate, up = split_gate_up(tensor)
        return [(f"{prefix}.gate_proj.weight", gate), (f"{prefix}.up_proj.weight", up)]

    def _checked(self, megatron_name: str, converted: Iterable[tuple[str, torch.Tensor]]
                 ) -> Iterator[tuple[str, torch.Tensor]]:
        """Every output must be a parameter of this architecture, with the shape the config implies."""
        for hf_name, tensor in converted:
            shape = self.expected.get(hf_name)
            if shape is None:
                raise UnknownParameterError(self._unknown(megatron_name, hf_name))
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"Megatron parameter {megatron_name!r} gives HF {hf_name!r} of shape {tuple(tensor.shape)}; "
                    f"the HF config implies {shape}"
                )
            yield hf_name, tensor

    def _unknown(self, megatron_name: str, hf_name: str | None = None) -> str:
        arch = self.arch
        where = f" (it would be HF {hf_name!r}, which this config does not have)" if hf_name else ""
        return (f"unknown Megatron parameter {megatron_name!r} for a {arch.family.name} model with "
                f"{arch.num_layers} layers{where}")

    def _unpad_vocab(self, tensor: torch.Tensor) -> torch.Tensor:
        vocab = self.arch.vocab_size
        if tensor.shape[0] < vocab:
            raise ValueError(f"the Megatron embedding has {tensor.shape[0]} rows, fewer than the HF vocab_size {vocab}")
        return tensor[:vocab] if tensor.shape[0] > vocab else tensor


def megatron_to_hf(hf_config: Any, named_tensors: Iterable[tuple[str, torch.Tensor]], *,
                   family: QwenFamily | str | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Convert Megatron-core ``(name, tensor)`` pairs to HF ``(name, tensor)`` pairs, streaming.

    :param hf_config: the HF config of the checkpoint the model was built from (object, dict, path).
    :param named_tensors: full (TP-gathered) tensors with global layer/expert numbers, any order.
    :param family: the Qwen family; by default the config's ``model_type``.
    :raises UnknownParameterError: a name with no HF counterpart in this architecture (named in the message).
    """
    converter = _Converter(read_architecture(hf_config, family))
    for name, tensor in named_tensors:
        yield from converter.convert(name, tensor)
