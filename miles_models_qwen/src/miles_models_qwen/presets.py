"""Random-init Qwen checkpoints with a locally built tokenizer (no model hub needed).

``create_checkpoint(arch, preset, out_dir, seed)`` writes an HF directory (``config.json``,
``generation_config.json``, safetensors weights, tokenizer with a Qwen chat template) loadable with
``AutoModelForCausalLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained(out_dir)``.
The same seed gives the same bytes. Presets run from a ~80k-parameter ``tiny`` model (tests, CPU demos)
to the layer shapes of released Qwen models (random weights, for memory and throughput work).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miles_models_qwen.architecture import FAMILIES, QwenArchitecture, read_architecture
from miles_models_qwen.hf_parameters import count_parameters
from miles_models_qwen.local_tokenizers import (  # noqa: F401  (re-exported: older imports use presets.*)
    CHAR_VOCAB_SIZE,
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    TokenizerKind,
    build_char_tokenizer,
    build_tokenizer,
)

__all__ = ["Preset", "PRESETS", "get_preset", "normalize_arch", "preset_hf_config", "preset_architecture",
           "preset_parameter_counts", "create_checkpoint"]

_REAL_ROPE = dict(rope_theta=1_000_000.0, rms_norm_eps=1e-6)


@dataclass(frozen=True)
class Preset:
    """One named model shape of one Qwen family."""

    arch: str  # family name: qwen2 | qwen3 | qwen3_moe | qwen2_moe
    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)  # HF config fields; vocab_size None = tokenizer size
    tokenizer: TokenizerKind = "char"
    dtype: str = "float32"
    real_shape: bool = False  # the layer shapes of a released model

    def hf_config_fields(self, tokenizer_size: int) -> dict[str, Any]:
        fields = dict(self.config)
        vocab = fields.get("vocab_size") or tokenizer_size
        if vocab < tokenizer_size:
            raise ValueError(f"preset {self.arch}/{self.name}: vocab_size {vocab} < tokenizer size {tokenizer_size}")
        fields["vocab_size"] = vocab
        return fields


def _tiny(**extra: Any) -> dict[str, Any]:
    return dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=128, max_position_embeddings=512, tie_word_embeddings=True, **extra)


def _small(**extra: Any) -> dict[str, Any]:
    return dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=768, max_position_embeddings=2048, tie_word_embeddings=True, **extra)


_PRESET_LIST = [
    # ---------------------------------------------------------------------------------------------- qwen3
    Preset("qwen3", "tiny", "2 layers, hidden 64: unit tests and CPU smoke runs", _tiny(head_dim=16)),
    Preset("qwen3", "small", "4 layers, hidden 256: CPU learning runs", _small(head_dim=64)),
    Preset("qwen3", "medium", "8 layers, hidden 512, BPE: single-GPU experiments",
           dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, head_dim=64,
                intermediate_size=1536, max_position_embeddings=4096, tie_word_embeddings=True, vocab_size=4096),
           tokenizer="bpe"),
    Preset("qwen3", "0.6b", "the layer shapes of Qwen3-0.6B",
           dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                intermediate_size=3072, max_position_embeddings=40960, tie_word_embeddings=True, vocab_size=151936,
                **_REAL_ROPE),
           tokenizer="bpe", dtype="bfloat16", real_shape=True),
    Preset("qwen3", "1.7b", "the layer shapes of Qwen3-1.7B",
           dict(hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                intermediate_size=6144, max_position_embeddings=40960, tie_word_embeddings=True, vocab_size=151936,
                **_REAL_ROPE),
           tokenizer="bpe", dtype="bfloat16", real_shape=True),
    # ---------------------------------------------------------------------------------------------- qwen2
    Preset("qwen2", "tiny", "2 layers, hidden 64, q/k/v bias: unit tests", _tiny()),
    Preset("qwen2", "small", "4 layers, hidden 256: CPU learning runs", _small()),
    Preset("qwen2", "0.5b", "the layer shapes of Qwen2.5-0.5B",
           dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                intermediate_size=4864, max_position_embeddings=32768, tie_word_embeddings=True, vocab_size=151936,
                **_REAL_ROPE),
           tokenizer="bpe", dtype="bfloat16", real_shape=True),
    Preset("qwen2", "1.5b", "the layer shapes of Qwen2.5-1.5B",
           dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                intermediate_size=8960, max_position_embeddings=32768, tie_word_embeddings=True, vocab_size=151936,
                **_REAL_ROPE),
           tokenizer="bpe", dtype="bfloat16", real_shape=True),
    # ------------------------------------------------------------------------------------------ qwen3_moe
    Preset("qwen3_moe", "tiny", "2 layers, 8 experts (top-2): unit tests",
           _tiny(head_dim=16, moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True)),
    Preset("qwen3_moe", "small", "4 layers, hidden 256, 16 experts (top-4): CPU MoE runs",
           _small(head_dim=64, moe_intermediate_size=128, num_experts=16, num_experts_per_tok=4, norm_topk_prob=True)),
    Preset("qwen3_moe", "a3b-mini", "Qwen3-30B-A3B scaled down: 8 layers, hidden 512, 32 experts (top-4)",
           dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2, head_dim=64,
                intermediate_size=1536, moe_intermediate_size=192, num_experts=32, num_experts_per_tok=4,
                norm_topk_prob=True, max_position_embeddings=4096, tie_word_embeddings=False, vocab_size=4096,
                router_aux_loss_coef=0.001),
           tokenizer="bpe"),
    Preset("qwen3_moe", "30b-a3b", "the layer shapes of Qwen3-30B-A3B (about 61 GB of bf16 on disk)",
           dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, num_key_value_heads=4, head_dim=128,
                intermediate_size=6144, moe_intermediate_size=768, num_experts=128, num_experts_per_tok=8,
                norm_topk_prob=True, max_position_embeddings=40960, tie_word_embeddings=False, vocab_size=151936,
                router_aux_loss_coef=0.001, **_REAL_ROPE),
           tokenizer="bpe", dtype="bfloat16", real_shape=True),
    # ------------------------------------------------------------------------------------------ qwen2_moe
    Preset("qwen2_moe", "tiny", "2 layers, 4 experts (top-2) and a gated shared expert: unit tests",
           _tiny(moe_intermediate_size=32, shared_expert_intermediate_size=64, num_experts=4, num_experts_per_tok=2,
                 norm_topk_prob=False)),
]

PRESETS: dict[str, dict[str, Preset]] = {}
for _preset in _PRESET_LIST:
    PRESETS.setdefault(_preset.arch, {})[_preset.name] = _preset


def normalize_arch(arch: str) -> str:
    """``qwen3-moe`` (CLI spelling) and ``qwen3_moe`` (spec name) are the same architecture."""
    name = arch.strip().lower().replace("-", "_")
    if name not in PRESETS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(a.replace('_', '-') for a in PRESETS)}")
    return name


def get_preset(arch: str, preset: str) -> Preset:
    family = normalize_arch(arch)
    try:
        return PRESETS[family][preset]
    except KeyError:
        raise ValueError(
            f"unknown preset {preset!r} for {arch}; choose one of {', '.join(PRESETS[family])} (see `miles models list`)"
        ) from None


def _tokenizer_size(kind: TokenizerKind) -> int:
    return CHAR_VOCAB_SIZE if kind == "char" else len(build_tokenizer(kind))


def _hf_config(preset: Preset, tokenizer, dtype: str) -> Any:
    """A transformers config object of the preset's family, with the tokenizer's special-token ids."""
    from transformers import AutoConfig

    family = FAMILIES[preset.arch]
    fields = preset.hf_config_fields(len(tokenizer))
    config_class = type(AutoConfig.for_model(family.hf_model_type))
    rope_theta = fields.pop("rope_theta", None)
    if rope_theta is not None:
        if "rope_parameters" in inspect.signature(config_class.__init__).parameters:  # transformers >= 5
            fields["rope_parameters"] = {"rope_type": "default", "rope_theta": rope_theta}
        else:
            fields["rope_theta"] = rope_theta
    config = config_class(
        architectures=[family.hf_architecture], eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **fields,
    )
    config.dtype = dtype
    return config


def preset_hf_config(arch: str, preset: str, tokenizer: TokenizerKind | None = None) -> dict[str, Any]:
    """The HF config fields of a preset as a ``config.json``-style dict (hub spelling), without writing anything."""
    chosen = get_preset(arch, preset)
    family = FAMILIES[chosen.arch]
    fields = chosen.hf_config_fields(_tokenizer_size(tokenizer or chosen.tokenizer))
    return {"architectures": [family.hf_architecture], "model_type": family.hf_model_type, **fields}


def preset_architecture(arch: str, preset: str, tokenizer: TokenizerKind | None = None) -> QwenArchitecture:
    """The architecture a preset creates (for parameter counts), without writing anything."""
    return read_architecture(preset_hf_config(arch, preset, tokenizer), get_preset(arch, preset).arch)


def preset_parameter_counts(arch: str, preset: str) -> tuple[int, int]:
    """``(total, active)`` parameters of a preset with its default tokenizer."""
    return count_parameters(preset_architecture(arch, preset))


def create_checkpoint(arch: str = "qwen3", preset: str = "tiny", out_dir: str | Path = "tiny-qwen3", seed: int = 0,
                      *, tokenizer: TokenizerKind | None = None, dtype: str | None = None) -> Path:
    """Write a random-init HF checkpoint of ``arch``/``preset`` to ``out_dir`` and return the path.

    :param arch: ``qwen2``, ``qwen3``, ``qwen3_moe`` (or ``qwen3-moe``), ``qwen2_moe``.
    :param preset: a name from :data:`PRESETS` (``miles models list`` shows them).
    :param seed: the same seed gives the same bytes.
    :param tokenizer: ``char`` or ``bpe``; the preset's default otherwise.
    :param dtype: ``float32``, ``bfloat16`` or ``float16``; the preset's default otherwise.
    """
    import torch
    from transformers import GenerationConfig

    from miles_models_qwen.random_weights import write_random_weights

    chosen = get_preset(arch, preset)
    dtype_name = dtype or chosen.dtype
    torch_dtype = getattr(torch, dtype_name, None)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"dtype {dtype_name!r} is not a floating-point torch dtype (float32, bfloat16, float16)")
    hf_tokenizer = build_tokenizer(tokenizer or chosen.tokenizer)
    config = _hf_config(chosen, hf_tokenizer, dtype_name)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    GenerationConfig.from_model_config(config).save_pretrained(out)
    hf_tokenizer.save_pretrained(out)
    write_random_weights(read_architecture(config, chosen.arch), out, seed=seed, dtype=torch_dtype)
    return out
