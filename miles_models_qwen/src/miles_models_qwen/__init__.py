"""miles-models-qwen: Qwen2 / Qwen3 / Qwen3-MoE / Qwen2-MoE model specs for Miles.

- the HF<->Megatron weight mapping (:func:`hf_to_megatron`, :func:`megatron_to_hf`, streaming);
- Megatron-core settings derived from an HF config (:func:`transformer_config`, :func:`gpt_model_kwargs`,
  :func:`layer_spec`);
- random-init checkpoints with a locally built tokenizer (:func:`create_checkpoint`, ``miles models``).

Importing the package is cheap; torch, transformers and megatron-core load when a function needs them.
"""

from miles_models_qwen.architecture import FAMILIES, QwenArchitecture, read_architecture
from miles_models_qwen.hf_to_megatron import hf_to_megatron
from miles_models_qwen.mapping_errors import IncompleteParameterError, UnknownParameterError
from miles_models_qwen.megatron_config import gpt_model_kwargs, layer_spec, transformer_config
from miles_models_qwen.megatron_layout import MegatronLayout
from miles_models_qwen.megatron_to_hf import megatron_to_hf
from miles_models_qwen.presets import PRESETS, create_checkpoint

__all__ = [
    "FAMILIES",
    "PRESETS",
    "IncompleteParameterError",
    "MegatronLayout",
    "QwenArchitecture",
    "UnknownParameterError",
    "create_checkpoint",
    "gpt_model_kwargs",
    "hf_to_megatron",
    "layer_spec",
    "megatron_to_hf",
    "read_architecture",
    "transformer_config",
]
