"""The transformers model behind the embedded engine: loading, batched prefill and one decode step.

Only this module calls the model. It knows nothing about requests: it turns lists of token ids into
logits and a :class:`~miles_core.engines.embedded.kv_batch.KVBatch`.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from miles_core.engines.embedded.kv_batch import KVBatch

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    """``auto`` is the first CUDA GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return resolved


def resolve_dtype(dtype: str, device: torch.device, checkpoint_dtype: torch.dtype | None) -> torch.dtype:
    """``auto`` is float32 on CPU and the checkpoint's dtype (bfloat16 if it names none) on GPU."""
    if dtype == "auto":
        if device.type == "cpu":
            return torch.float32
        return checkpoint_dtype if checkpoint_dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"--dtype {dtype!r}: expected auto or one of {', '.join(sorted(_DTYPES))}") from None


def _load_model(auto_class, path: str, dtype: torch.dtype):
    """``from_pretrained`` with the dtype keyword of the installed transformers (``dtype`` since 4.56)."""
    import transformers
    from packaging.version import Version

    keyword = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return auto_class.from_pretrained(path, **{keyword: dtype})


@dataclass
class PrefillOutput:
    """Result of prefilling some rows: their KV batch, next-token logits and, when asked, all logits."""

    kv: KVBatch
    last_logits: torch.Tensor  # [B, V] float32
    all_logits: torch.Tensor | None  # [B, kept, V] float32, the last ``kept`` positions of each row


class ModelRunner:
    """Loads a causal LM and runs its forward passes."""

    def __init__(self, model_path: str | Path, *, device: str = "auto", dtype: str = "auto") -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        self.model_path = str(model_path)
        self.device = resolve_device(device)
        config = AutoConfig.from_pretrained(self.model_path)
        checkpoint_dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        if isinstance(checkpoint_dtype, str):
            checkpoint_dtype = _DTYPES.get(checkpoint_dtype)
        self.dtype = resolve_dtype(dtype, self.device, checkpoint_dtype)
        self.model = _load_model(AutoModelForCausalLM, self.model_path, self.dtype).to(self.device).eval()
        self.model.requires_grad_(False)
        # Two tokenizers: the HTTP thread encodes while the scheduler thread decodes.
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.scheduler_tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.config = self.model.config
        output_embeddings = self.model.get_output_embeddings()
        self.vocab_size = int(output_embeddings.weight.shape[0] if output_embeddings is not None else self.config.vocab_size)
        self.context_length = int(getattr(self.config, "max_position_embeddings", 0) or 32768)
        self.eos_token_ids = self._eos_token_ids()
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in parameters else "past_key_values"
        self._supports_logits_to_keep = "logits_to_keep" in parameters

    def _eos_token_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.config):
            eos = getattr(source, "eos_token_id", None)
            ids.update([eos] if isinstance(eos, int) else (eos or []))
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return frozenset(int(i) for i in ids)

    def new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.config)

    @torch.inference_mode()
    def prefill(self, rows: list[list[int]], keep_last: int = 1) -> PrefillOutput:
        """Run the prompts ``rows`` (left-padded together) and return their cache and logits.

        ``keep_last`` is how many trailing positions of logits to return in ``all_logits`` (1 returns
        only ``last_logits``); log-probs of prompt tokens need more.
        """
        length = max(len(r) for r in rows)
        pad_id = 0
        input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, length - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, length - len(row):] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)
        cache = self.new_cache()
        kwargs = {self._cache_kwarg: cache}
        if self._supports_logits_to_keep:
            kwargs["logits_to_keep"] = keep_last
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        logits = out.logits[:, -keep_last:, :].float()
        kv = KVBatch(cache=cache, attention_mask=mask, next_position=mask.sum(-1))
        return PrefillOutput(kv=kv, last_logits=logits[:, -1, :], all_logits=logits if keep_last > 1 else None)

    @torch.inference_mode()
    def decode(self, kv: KVBatch, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; return the next-token logits ``[B, V]`` (float32)."""
        step_mask, positions = kv.step_inputs()
        kwargs = {self._cache_kwarg: kv.cache}
        if self._supports_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=tokens.to(self.device).unsqueeze(1), attention_mask=step_mask,
                         position_ids=positions, use_cache=True, **kwargs)
        kv.after_step(step_mask)
        return out.logits[:, -1, :].float()
