"""Megatron-core settings of a Qwen model, derived from its HF config (what Miles's model scripts hard-code).

- :func:`transformer_config` gives the ``TransformerConfig`` keyword arguments that describe the model
  (shapes, GQA, qk-norm, qkv bias, RMSNorm, SwiGLU, MoE routing). Run settings (precision, parallelism,
  fusions, recomputation, dropout overrides, token dispatcher) are the train backend's to add.
- :func:`gpt_model_kwargs` gives what ``GPTModel(...)`` takes beside the config: vocabulary, RoPE base,
  tied embeddings.
- :func:`layer_spec` gives the layer/block spec: Transformer Engine modules when TE is importable (or
  ``args.transformer_impl == "transformer_engine"``), else megatron-core's local modules, which also run
  on CPU.

megatron-core is imported inside the functions only (the plugin module must stay light), and the
APIs used exist from megatron-core 0.16 through 0.19.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

from miles_models_qwen.architecture import QwenArchitecture, QwenFamily, read_architecture

__all__ = ["transformer_config", "gpt_model_kwargs", "layer_spec", "use_transformer_engine"]


def _moe_kwargs(arch: QwenArchitecture) -> dict[str, Any]:
    if not arch.family.moe:
        return {}
    if arch.num_experts_per_token == 1 and arch.norm_topk_prob:
        raise ValueError(
            f"{arch.family.name}: num_experts_per_tok=1 with norm_topk_prob=true (a weight of 1 for the chosen expert) "
            "has no Megatron router equivalent (Megatron needs --moe-router-pre-softmax for top-1)"
        )
    layer_freq: int | list[int] = 1 if all(arch.moe_layers) else [int(is_moe) for is_moe in arch.moe_layers]
    kwargs: dict[str, Any] = dict(
        num_moe_experts=arch.num_experts,
        moe_router_topk=arch.num_experts_per_token,
        moe_ffn_hidden_size=arch.moe_intermediate_size,
        moe_layer_freq=layer_freq,
        moe_router_score_function="softmax",
        # HF: softmax over all experts, top-k, then renormalise iff norm_topk_prob. Megatron without
        # pre-softmax takes the top-k logits and softmaxes those, which is the renormalised result.
        moe_router_pre_softmax=not arch.norm_topk_prob,
        moe_router_dtype="fp32",  # HF computes the routing softmax in float32
        moe_router_load_balancing_type="aux_loss",
        moe_aux_loss_coeff=arch.router_aux_loss_coef,
    )
    if arch.family.shared_expert:
        kwargs.update(moe_shared_expert_intermediate_size=arch.shared_expert_intermediate_size,
                      moe_shared_expert_gate=True)
    return kwargs


def transformer_config(hf_config: Any, *, family: QwenFamily | str | None = None) -> dict[str, Any]:
    """``TransformerConfig(**transformer_config(hf_config), **run_settings)`` builds the Megatron model config."""
    import torch.nn.functional as F

    arch = read_architecture(hf_config, family)
    return dict(
        num_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        ffn_hidden_size=arch.intermediate_size,
        num_attention_heads=arch.num_attention_heads,
        num_query_groups=arch.num_key_value_heads,
        kv_channels=arch.head_dim,
        normalization="RMSNorm",
        layernorm_epsilon=arch.rms_norm_eps,
        qk_layernorm=arch.family.qk_norm,
        add_bias_linear=False,
        add_qkv_bias=arch.qkv_bias,
        gated_linear_unit=True,
        activation_func=F.silu,
        hidden_dropout=0.0,
        attention_dropout=arch.attention_dropout,
        init_method_std=arch.initializer_range,
        **_moe_kwargs(arch),
    )


def gpt_model_kwargs(hf_config: Any, *, family: QwenFamily | str | None = None) -> dict[str, Any]:
    """``GPTModel(config, layer_spec, **gpt_model_kwargs(hf_config))``: vocabulary, RoPE and tied embeddings.

    ``vocab_size`` is the HF one; a backend that pads it for tensor parallelism overrides it (and passes
    the padded size to the weight mapping's ``MegatronLayout``).
    """
    arch = read_architecture(hf_config, family)
    return dict(
        vocab_size=arch.vocab_size,
        max_sequence_length=arch.max_position_embeddings,
        position_embedding_type="rope",
        rotary_base=arch.rope_theta,
        rotary_percent=1.0,
        share_embeddings_and_output_weights=arch.tie_word_embeddings,
    )


def use_transformer_engine(args: Any = None) -> bool:
    """``args.transformer_impl`` decides when set (Megatron's ``--transformer-impl``); else TE if importable."""
    impl = getattr(args, "transformer_impl", None)
    if impl is not None:
        if impl not in ("local", "transformer_engine"):
            raise ValueError(f"--transformer-impl must be 'local' or 'transformer_engine', got {impl!r}")
        return impl == "transformer_engine"
    return importlib.util.find_spec("transformer_engine") is not None


def layer_spec(args: Any, config: Any, vp_stage: int | None = None) -> Any:
    """The decoder block spec of this model for ``GPTModel(transformer_layer_spec=...)``.

    Dense and MoE layers both come from megatron-core's ``get_gpt_decoder_block_spec``, which reads
    ``config.num_moe_experts``, ``config.moe_layer_freq``, ``config.qk_layernorm`` and
    ``config.moe_grouped_gemm``, and keeps only the layers of this pipeline (and virtual) stage.
    """
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_decoder_block_spec

    kwargs: dict[str, Any] = dict(use_transformer_engine=use_transformer_engine(args), normalization="RMSNorm")
    if vp_stage is not None:
        if "vp_stage" not in inspect.signature(get_gpt_decoder_block_spec).parameters:
            raise RuntimeError("this megatron-core's get_gpt_decoder_block_spec has no vp_stage (virtual pipeline)")
        kwargs["vp_stage"] = vp_stage
    return get_gpt_decoder_block_spec(config, **kwargs)
