"""The tokenizer and chat template, as the data source and the generate function both use them.

Both sides must turn a prompt into the same token ids (the data source measures prompt length with
them, the generate function sends them to the engine), so both go through these helpers. The
tokenizer is loaded once per process and checkpoint path; ``transformers`` is imported lazily so that
plugin modules stay cheap to import.
"""

from __future__ import annotations

import functools
import json
from typing import Any

__all__ = ["load_tokenizer", "chat_template_kwargs", "render_chat_template", "encode_prompt"]


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    """The HF tokenizer of the checkpoint at ``path`` (``--hf-checkpoint``), cached per process."""
    if not path:
        raise ValueError("--hf-checkpoint is not set: the prompt cannot be tokenised without the model's tokenizer")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the flag that names the path
        raise ValueError(f"--hf-checkpoint {path!r}: cannot load its tokenizer ({type(exc).__name__}: {exc})") from exc


def chat_template_kwargs(args: Any) -> dict[str, Any]:
    """``--apply-chat-template-kwargs`` as a dict (the flag may hold a JSON string or an already parsed dict)."""
    value = getattr(args, "apply_chat_template_kwargs", None)
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--apply-chat-template-kwargs must be a JSON object, got {value!r} ({exc})") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"--apply-chat-template-kwargs must be a JSON object, got {value!r}")
    return parsed


def render_chat_template(
    tokenizer: Any, messages: list[dict[str, Any]], *, tools: Any = None, extra_kwargs: dict[str, Any] | None = None
) -> str:
    """The prompt text of ``messages`` under the tokenizer's chat template, ending with the assistant turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer of --hf-checkpoint has no chat template, so a chat-message prompt cannot be rendered; "
            "use plain-text prompts or a checkpoint whose tokenizer_config.json has a chat_template"
        )
    kwargs = dict(extra_kwargs or {})
    if tools:
        kwargs["tools"] = tools
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)


def encode_prompt(tokenizer: Any, prompt: str | list[dict[str, Any]], *, tools: Any = None,
                  extra_kwargs: dict[str, Any] | None = None) -> list[int]:
    """Token ids of a prompt as the engine sees it: text without added special tokens; chat messages templated."""
    if isinstance(prompt, list):
        prompt = render_chat_template(tokenizer, prompt, tools=tools, extra_kwargs=extra_kwargs)
    return list(tokenizer.encode(prompt, add_special_tokens=False))
