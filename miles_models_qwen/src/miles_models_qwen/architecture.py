"""What the converters and config builders need to know about one Qwen checkpoint, read from its HF config.

An HF config arrives in many shapes: a ``transformers`` config object, the dict of a ``config.json``
(hub spelling, e.g. ``num_experts`` and ``rope_theta``) or the dict of ``config.to_dict()``
(transformers 5 spelling, e.g. ``num_local_experts`` and ``rope_parameters``), or a checkpoint
directory. :func:`read_architecture` reads any of them into one :class:`QwenArchitecture`, checks the
features Megatron can express, and fails with the field's name when it meets one it cannot.

Importing this module is cheap (no torch, no transformers), so the plugin module can use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["QwenFamily", "QwenArchitecture", "FAMILIES", "read_architecture", "hf_config_dict"]


@dataclass(frozen=True)
class QwenFamily:
    """The fixed traits of one HF architecture family (what its modeling code hard-codes)."""

    name: str  # the model spec name, e.g. "qwen3_moe"
    hf_architecture: str  # e.g. "Qwen3MoeForCausalLM"
    hf_model_type: str  # e.g. "qwen3_moe"
    qk_norm: bool  # Qwen3: RMSNorm over each head of q and k
    qkv_bias_field: str | None  # config field saying whether q/k/v have a bias; None: hard-coded (Qwen2)
    qkv_bias_default: bool  # the modeling code's value when the field is absent
    moe: bool
    shared_expert: bool  # Qwen2-MoE: one always-on expert with a sigmoid gate


FAMILIES: dict[str, QwenFamily] = {
    family.name: family
    for family in (
        QwenFamily("qwen2", "Qwen2ForCausalLM", "qwen2", qk_norm=False, qkv_bias_field=None, qkv_bias_default=True,
                   moe=False, shared_expert=False),
        QwenFamily("qwen3", "Qwen3ForCausalLM", "qwen3", qk_norm=True, qkv_bias_field="attention_bias",
                   qkv_bias_default=False, moe=False, shared_expert=False),
        QwenFamily("qwen3_moe", "Qwen3MoeForCausalLM", "qwen3_moe", qk_norm=True, qkv_bias_field="attention_bias",
                   qkv_bias_default=False, moe=True, shared_expert=False),
        QwenFamily("qwen2_moe", "Qwen2MoeForCausalLM", "qwen2_moe", qk_norm=False, qkv_bias_field="qkv_bias",
                   qkv_bias_default=True, moe=True, shared_expert=True),
    )
}


@dataclass(frozen=True)
class QwenArchitecture:
    """Every shape and switch of one checkpoint that the mapping and the Megatron config depend on."""

    family: QwenFamily
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int  # dense MLP width (dense models, and dense layers of a MoE model)
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool
    initializer_range: float = 0.02
    attention_dropout: float = 0.0
    # Mixture of experts (zero / empty for dense models)
    num_experts: int = 0
    num_experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    norm_topk_prob: bool = False
    router_aux_loss_coef: float = 0.0
    moe_layers: tuple[bool, ...] = ()  # per layer: True where the MLP is a MoE block

    @property
    def heads_per_group(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    def is_moe_layer(self, layer: int) -> bool:
        return bool(self.moe_layers) and self.moe_layers[layer]


def hf_config_dict(hf_config: Any) -> dict[str, Any]:
    """The HF config as a plain dict, from a config object, a dict, a ``config.json`` or a checkpoint dir."""
    if isinstance(hf_config, Mapping):
        return dict(hf_config)
    if isinstance(hf_config, (str, Path)):
        path = Path(hf_config)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no HF config at {path} (expected a checkpoint directory with config.json)")
        return json.loads(path.read_text())
    to_dict = getattr(hf_config, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"expected an HF config object, dict, config.json path or checkpoint directory; got {hf_config!r}")


def _require(config: Mapping[str, Any], key: str, family: QwenFamily) -> Any:
    value = config.get(key)
    if value is None:
        raise ValueError(f"{family.name}: the HF config has no {key!r}, which this architecture needs")
    return value


def _rope_theta(config: Mapping[str, Any], family: QwenFamily) -> float:
    """``rope_parameters`` (transformers 5) or ``rope_theta``/``rope_scaling`` (config.json of the hub)."""
    rope = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if rope_type != "default":
        raise ValueError(
            f"{family.name}: rope type {rope_type!r} (HF config rope_parameters/rope_scaling) is not supported by the "
            "Megatron mapping; only plain RoPE ('default') is"
        )
    theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    return float(theta)


def _moe_layers(config: Mapping[str, Any], num_layers: int) -> tuple[bool, ...]:
    """HF's rule: layer i is sparse unless listed in ``mlp_only_layers``, every ``decoder_sparse_step``-th."""
    step = int(config.get("decoder_sparse_step") or 1)
    dense_only = set(config.get("mlp_only_layers") or ())
    return tuple(i not in dense_only and (i + 1) % step == 0 for i in range(num_layers))


def read_architecture(hf_config: Any, family: QwenFamily | str | None = None) -> QwenArchitecture:
    """Read ``hf_config`` (object, dict, ``config.json`` or directory) as a member of ``family``.

    ``family`` defaults to the one named by the config's ``model_type``. Features the Megatron mapping
    cannot express (sliding-window attention, scaled RoPE, an output-projection bias, a non-SiLU MLP)
    are errors naming the config field.
    """
    config = hf_config_dict(hf_config)
    if family is None:
        model_type = config.get("model_type")
        if model_type not in FAMILIES:
            raise ValueError(f"model_type {model_type!r} is not a Qwen family this package knows: {sorted(FAMILIES)}")
        family = FAMILIES[model_type]
    elif isinstance(family, str):
        family = FAMILIES[family]

    if config.get("use_sliding_window"):
        raise ValueError(f"{family.name}: use_sliding_window=true is not supported by the Megatron mapping")
    if (config.get("hidden_act") or "silu") != "silu":
        raise ValueError(f"{family.name}: hidden_act {config['hidden_act']!r} is not supported (Qwen MLPs use silu)")
    qkv_bias = family.qkv_bias_default
    if family.qkv_bias_field is not None and config.get(family.qkv_bias_field) is not None:
        qkv_bias = bool(config[family.qkv_bias_field])
    if family.qkv_bias_field == "attention_bias" and qkv_bias:
        raise ValueError(
            f"{family.name}: attention_bias=true also puts a bias on o_proj, which Megatron's attention cannot hold "
            "without biases on every linear layer; such checkpoints are not supported"
        )

    hidden_size = int(_require(config, "hidden_size", family))
    heads = int(_require(config, "num_attention_heads", family))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    if heads % kv_heads:
        raise ValueError(f"{family.name}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    num_layers = int(_require(config, "num_hidden_layers", family))
    moe: dict[str, Any] = {}
    if family.moe:
        moe = dict(
            num_experts=int(config.get("num_experts") or _require(config, "num_local_experts", family)),
            num_experts_per_token=int(_require(config, "num_experts_per_tok", family)),
            moe_intermediate_size=int(_require(config, "moe_intermediate_size", family)),
            norm_topk_prob=bool(config.get("norm_topk_prob", False)),
            router_aux_loss_coef=float(config.get("router_aux_loss_coef") or 0.0),
            moe_layers=_moe_layers(config, num_layers),
        )
        if family.shared_expert:
            moe["shared_expert_intermediate_size"] = int(_require(config, "shared_expert_intermediate_size", family))
    return QwenArchitecture(
        family=family,
        vocab_size=int(_require(config, "vocab_size", family)),
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=int(config.get("head_dim") or hidden_size // heads),
        intermediate_size=int(_require(config, "intermediate_size", family)),
        rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6),
        rope_theta=_rope_theta(config, family),
        max_position_embeddings=int(config.get("max_position_embeddings") or 32768),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=qkv_bias,
        initializer_range=float(config.get("initializer_range") or 0.02),
        attention_dropout=float(config.get("attention_dropout") or 0.0),
        **moe,
    )
