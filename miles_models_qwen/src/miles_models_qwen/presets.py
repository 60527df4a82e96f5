"""Random-init Qwen checkpoints with a locally built tokenizer (no model hub needed).

``create_checkpoint(arch, preset, out_dir, seed)`` writes an HF directory (safetensors, config,
tokenizer with a Qwen-style chat template) loadable with ``from_pretrained(out_dir)``.
"""

from __future__ import annotations

import string
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

PRESETS: dict[str, dict[str, dict]] = {
    "qwen3": {
        "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                     intermediate_size=128),
    },
}


def build_char_tokenizer():
    """A character-level tokenizer: one printable character per token, plus Qwen's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + list(string.printable))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"], padding_side="left",
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def create_checkpoint(arch: str = "qwen3", preset: str = "tiny", out_dir: str | Path = "tiny-qwen3", seed: int = 0) -> Path:
    """Write a random-init HF checkpoint of ``arch``/``preset`` to ``out_dir`` and return the path."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = Path(out_dir)
    tokenizer = build_char_tokenizer()
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        **PRESETS[arch][preset],
    )
    model = Qwen3ForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
