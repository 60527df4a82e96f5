"""The ``ModelSpec`` of each Qwen family, as the plugin registers them.

All families share one mapping and one config builder; a spec binds them to its family, so a spec
forced with ``--model-spec qwen2`` reads the checkpoint with Qwen2's traits (hard-coded q/k/v bias, no
qk-norm) whatever its ``model_type`` says.
"""

from __future__ import annotations

from functools import partial

from miles_core.plugins.types import ModelSpec

from miles_models_qwen.architecture import FAMILIES, QwenFamily
from miles_models_qwen.hf_to_megatron import hf_to_megatron
from miles_models_qwen.megatron_config import gpt_model_kwargs, layer_spec, transformer_config
from miles_models_qwen.megatron_to_hf import megatron_to_hf

__all__ = ["model_specs"]

_DESCRIPTIONS = {
    "qwen2": "Qwen2 / Qwen2.5 dense models (GQA, q/k/v bias, SwiGLU, RMSNorm, RoPE)",
    "qwen3": "Qwen3 dense models (GQA, qk-norm, SwiGLU, RMSNorm, RoPE)",
    "qwen3_moe": "Qwen3-MoE models (qk-norm, top-k routed SwiGLU experts)",
    "qwen2_moe": "Qwen2-MoE / Qwen1.5-MoE models (q/k/v bias, routed experts plus a gated shared expert)",
}


def _spec(family: QwenFamily) -> ModelSpec:
    return ModelSpec(
        name=family.name,
        description=_DESCRIPTIONS[family.name],
        hf_architectures=(family.hf_architecture,),
        hf_model_types=(family.hf_model_type,),
        transformer_config=partial(transformer_config, family=family),
        layer_spec=layer_spec,
        hf_to_megatron=partial(hf_to_megatron, family=family),
        megatron_to_hf=partial(megatron_to_hf, family=family),
        gpt_model_kwargs=partial(gpt_model_kwargs, family=family),
    )


def model_specs() -> list[ModelSpec]:
    """One spec per Qwen family, in a stable order."""
    return [_spec(family) for family in FAMILIES.values()]
