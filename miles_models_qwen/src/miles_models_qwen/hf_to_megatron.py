"""Stream HF Qwen weights into Megatron-core names, fusing QKV and gate/up on the way.

The input is any iterator of ``(hf_name, tensor)``: a safetensors file read in order, ``model.state_dict()``
items, or tensors arriving over the network. Tensors that map one to one are passed on at once; the
parts of a fused tensor (q/k/v, gate/up) wait in a buffer only until their last part arrives. Reading a
checkpoint layer by layer therefore holds at most one layer's worth of tensors, so converting a large
model never needs two full copies in memory.

Both HF spellings of MoE experts are accepted: the hub's one-tensor-per-expert names, and the 3-D
``mlp.experts.gate_up_proj``/``down_proj`` tensors that transformers 5 keeps in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from miles_models_qwen.architecture import QwenArchitecture, QwenFamily, read_architecture
from miles_models_qwen.fused_tensors import fuse_gate_up, fuse_qkv
from miles_models_qwen.hf_parameters import iter_hf_parameters
from miles_models_qwen.mapping_errors import IncompleteParameterError, UnknownParameterError
from miles_models_qwen.megatron_layout import MegatronLayout

if TYPE_CHECKING:
    import torch

__all__ = ["hf_to_megatron"]

_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
_QKV = re.compile(r"self_attn\.([qkv])_proj\.(weight|bias)")
_QK_NORM = re.compile(r"self_attn\.([qk])_norm\.weight")
_DENSE = re.compile(r"mlp\.(gate|up|down)_proj\.weight")
_EXPERT = re.compile(r"mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight")
_FUSED_EXPERTS = re.compile(r"mlp\.experts\.(gate_up_proj|down_proj)")
_SHARED = re.compile(r"mlp\.shared_expert\.(gate|up|down)_proj\.weight")


class _Converter:
    """One pass over one checkpoint: validates each name and shape, renames, buffers fused parts."""

    def __init__(self, arch: QwenArchitecture, layout: MegatronLayout):
        self.arch = arch
        self.layout = layout
        self.expected = {p.name: p.shape for p in iter_hf_parameters(arch)}
        self.pending: dict[str, dict[str, torch.Tensor]] = {}  # megatron name -> parts received so far

    # ------------------------------------------------------------------------------------ validation

    def check(self, name: str, tensor: torch.Tensor) -> None:
        shape = self.expected.get(name)
        if shape is None:
            raise UnknownParameterError(
                f"unknown HF parameter {name!r} for a {self.arch.family.name} checkpoint with "
                f"{self.arch.num_layers} layers{self._why_unknown(name)}"
            )
        if tuple(tensor.shape) != shape:
            raise ValueError(f"HF parameter {name!r} has shape {tuple(tensor.shape)}; the HF config implies {shape}")

    def _why_unknown(self, name: str) -> str:
        arch, family = self.arch, self.arch.family
        if "_norm.weight" in name and "self_attn" in name and not family.qk_norm:
            return f" ({family.name} has no q/k norm)"
        if "self_attn" in name and name.endswith(".bias") and not arch.qkv_bias:
            return " (this config has no q/k/v bias)"
        if ".mlp.experts." in name or ".mlp.gate." in name or "shared_expert" in name:
            return " (not a MoE layer of this config, or an expert index out of range)"
        return ""

    # ------------------------------------------------------------------------------------ conversion

    def convert(self, name: str, tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        arch = self.arch
        if name == "model.embed_tokens.weight":
            self.check(name, tensor)
            yield "embedding.word_embeddings.weight", self._pad_vocab(tensor)
        elif name == "lm_head.weight":
            if arch.tie_word_embeddings:
                return  # tied: Megatron shares the embedding; HF's in-memory state_dict repeats it here
            self.check(name, tensor)
            yield "output_layer.weight", self._pad_vocab(tensor)
        elif name == "model.norm.weight":
            self.check(name, tensor)
            yield "decoder.final_layernorm.weight", tensor
        elif match := _LAYER.fullmatch(name):
            yield from self._convert_layer(name, int(match.group(1)), match.group(2), tensor)
        else:
            self.check(name, tensor)  # raises: not a name of this architecture

    def _convert_layer(self, name: str, layer: int, suffix: str, tensor: torch.Tensor
                       ) -> Iterator[tuple[str, torch.Tensor]]:
        arch, layout = self.arch, self.layout
        out = f"decoder.layers.{layer}"
        if fused := _FUSED_EXPERTS.fullmatch(suffix):
            yield from self._split_fused_experts(name, layer, fused.group(1), tensor)
            return
        self.check(name, tensor)
        if suffix == "input_layernorm.weight":
            yield layout.attention_norm(layer), tensor
        elif suffix == "post_attention_layernorm.weight":
            yield layout.mlp_norm(layer, arch.is_moe_layer(layer)), tensor
        elif match := _QKV.fullmatch(suffix):
            yield from self._gather(f"{out}.self_attention.linear_qkv.{match.group(2)}", match.group(1), tensor,
                                    ("q", "k", "v"))
        elif suffix == "self_attn.o_proj.weight":
            yield f"{out}.self_attention.linear_proj.weight", tensor
        elif match := _QK_NORM.fullmatch(suffix):
            yield f"{out}.self_attention.{match.group(1)}_layernorm.weight", tensor
        elif match := _DENSE.fullmatch(suffix):
            yield from self._mlp(f"{out}.mlp.linear_fc1.weight", f"{out}.mlp.linear_fc2.weight", match.group(1), tensor)
        elif suffix == "mlp.gate.weight":
            yield f"{out}.mlp.router.weight", tensor
        elif match := _EXPERT.fullmatch(suffix):
            expert = int(match.group(1))
            yield from self._mlp(layout.expert_linear(layer, expert, 1), layout.expert_linear(layer, expert, 2),
                                 match.group(2), tensor)
        elif match := _SHARED.fullmatch(suffix):
            yield from self._mlp(f"{out}.mlp.shared_experts.linear_fc1.weight",
                                 f"{out}.mlp.shared_experts.linear_fc2.weight", match.group(1), tensor)
        elif suffix == "mlp.shared_expert_gate.weight":
            yield f"{out}.mlp.shared_experts.gate_weight", tensor
        else:  # pragma: no cover - every name of the inventory is handled above
            raise UnknownParameterError(f"HF parameter {name!r} has no Megatron counterpart")

    def _mlp(self, fc1: str, fc2: str, projection: str, tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        if projection == "down":
            yield fc2, tensor
        else:
            yield from self._gather(fc1, projection, tensor, ("gate", "up"))

    def _gather(self, target: str, part: str, tensor: torch.Tensor, parts: tuple[str, ...]
                ) -> Iterator[tuple[str, torch.Tensor]]:
        """Buffer one part of ``target``; emit the fused tensor when the last part arrives."""
        received = self.pending.setdefault(target, {})
        if part in received:
            raise ValueError(f"{target}: received the {part!r} part twice")
        received[part] = tensor
        if len(received) < len(parts):
            return
        del self.pending[target]
        if parts == ("gate", "up"):
            yield target, fuse_gate_up(received["gate"], received["up"])
        else:
            yield target, fuse_qkv(received["q"], received["k"], received["v"], self.arch.num_key_value_heads,
                                   self.arch.head_dim)

    def _split_fused_experts(self, name: str, layer: int, kind: str, tensor: torch.Tensor
                             ) -> Iterator[tuple[str, torch.Tensor]]:
        """transformers 5 in-memory experts: ``gate_up_proj [E, 2F, H]`` rows are already ``[gate; up]``."""
        arch = self.arch
        hidden, width = arch.hidden_size, arch.moe_intermediate_size
        shape = (arch.num_experts, 2 * width, hidden) if kind == "gate_up_proj" else (arch.num_experts, hidden, width)
        if layer >= arch.num_layers or not arch.is_moe_layer(layer):
            raise UnknownParameterError(f"unknown HF parameter {name!r}: layer {layer} is not a MoE layer of this config")
        if tuple(tensor.shape) != shape:
            raise ValueError(f"HF parameter {name!r} has shape {tuple(tensor.shape)}; the HF config implies {shape}")
        fc = 1 if kind == "gate_up_proj" else 2
        for expert in range(arch.num_experts):
            yield self.layout.expert_linear(layer, expert, fc), tensor[expert].clone()

    def _pad_vocab(self, tensor: torch.Tensor) -> torch.Tensor:
        padded = self.layout.padded_vocab_size
        if padded is None or padded == tensor.shape[0]:
            return tensor
        if padded < tensor.shape[0]:
            raise ValueError(f"padded_vocab_size {padded} is smaller than the HF vocab_size {tensor.shape[0]}")
        import torch

        pad = torch.zeros(padded - tensor.shape[0], *tensor.shape[1:], dtype=tensor.dtype, device=tensor.device)
        return torch.cat([tensor, pad], dim=0)

    def finish(self) -> None:
        if self.pending:
            missing = []
            for target, received in sorted(self.pending.items()):
                wanted = ("gate", "up") if "linear_fc1" in target else ("q", "k", "v")
                lacking = [p for p in wanted if p not in received]
                missing.append(f"{target} (has {sorted(received)}, lacks {lacking})")
            raise IncompleteParameterError("the HF weights ended before these fused tensors were complete: "
                                           + "; ".join(missing))


def hf_to_megatron(hf_config: Any, named_tensors: Iterable[tuple[str, torch.Tensor]], *,
                   layout: MegatronLayout | None = None, family: QwenFamily | str | None = None,
                   ) -> Iterator[tuple[str, torch.Tensor]]:
    """Convert HF ``(name, tensor)`` pairs to Megatron-core ``(name, tensor)`` pairs, streaming.

    :param hf_config: the checkpoint's HF config (object, dict, ``config.json`` path or directory).
    :param named_tensors: HF names and full (unsharded) tensors, in any order; layer-by-layer order keeps
        the buffer to one layer.
    :param layout: the Megatron naming to produce (local spec by default; see :class:`MegatronLayout`).
    :param family: the Qwen family (``"qwen3"`` ...); by default the config's ``model_type``.
    :raises UnknownParameterError: a name this architecture does not have (the message names it).
    :raises IncompleteParameterError: the input ended with a fused tensor missing a part.
    """
    converter = _Converter(read_architecture(hf_config, family), layout or MegatronLayout())
    for name, tensor in named_tensors:
        yield from converter.convert(name, tensor)
    converter.finish()
