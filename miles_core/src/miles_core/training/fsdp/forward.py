"""One forward pass over a micro-batch, cut back into per-sample response tensors.

- Policy models give, for every sample, the **log-probability of each response token** and
  optionally the **entropy** of the predicting distribution. Logits are divided by
  ``--rollout-temperature`` (the engine sampled from that distribution) and turned into float32
  log-softmax ``--log-probs-chunk-size`` positions at a time, so a bf16 ``[tokens, vocab]`` block is never
  materialised in float32 at once. On packed batches only the positions that predict response tokens
  go through the LM head (``logits_to_keep``), which skips the prompt's vocabulary projection.
- Critic models give one **value** per response token, read at the same positions (the state before
  the token is generated).
"""

from __future__ import annotations

import torch
from torch import nn

from miles_core.training.batching import MicroBatch

__all__ = ["ForwardOutput", "forward_policy", "forward_values", "token_log_probs_and_entropy", "zero_loss_pass"]


class ForwardOutput:
    """Per-sample response tensors of one micro-batch (in ``micro_batch.spans`` order)."""

    def __init__(self, log_probs: list[torch.Tensor], entropy: list[torch.Tensor] | None, logits: torch.Tensor | None):
        self.log_probs = log_probs
        self.entropy = entropy
        self.logits = logits


def token_log_probs_and_entropy(
    logits: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0, chunk_size: int = -1,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log softmax(logits / T)[target]`` and ``H = logsumexp(z) − Σ softmax(z)·z`` per row, in float32.

    :param logits: ``[N, vocab]`` in any float dtype.
    :param chunk_size: rows per float32 chunk (``<= 0``: all at once).
    """
    n = logits.shape[0]
    step = n if chunk_size is None or chunk_size <= 0 else chunk_size
    log_probs, entropies = [], []
    for start in range(0, max(n, 1), max(step, 1)):
        z = logits[start : start + step].float()
        if temperature != 1.0:
            z = z / temperature
        lse = torch.logsumexp(z, dim=-1)
        log_probs.append(z.gather(-1, targets[start : start + step, None]).squeeze(-1) - lse)
        if with_entropy:
            entropies.append(lse - (torch.softmax(z, dim=-1) * z).sum(-1))
    return torch.cat(log_probs), (torch.cat(entropies) if with_entropy else None)


def _response_positions(micro_batch: MicroBatch) -> list[torch.Tensor]:
    return [torch.arange(s.logit_positions.start, s.logit_positions.stop) for s in micro_batch.spans]


def forward_policy(
    model: nn.Module, micro_batch: MicroBatch, *, temperature: float, chunk_size: int = -1, with_entropy: bool = False,
    keep_logits: bool = False,
) -> ForwardOutput:
    """Log-probs (and entropy) of every sample's response tokens under ``model``.

    :param keep_logits: also return the raw logits (a custom loss wants them); this disables the
        ``logits_to_keep`` shortcut so the logits cover every position.
    """
    positions = _response_positions(micro_batch)
    device = micro_batch.input_ids.device
    kwargs = dict(input_ids=micro_batch.input_ids, position_ids=micro_batch.position_ids,
                  attention_mask=micro_batch.attention_mask, use_cache=False)
    if micro_batch.is_empty:
        raise ValueError("an empty micro-batch has no responses to score; run zero_loss_pass instead")
    flat_positions = torch.cat(positions).to(device)
    rows = torch.cat([torch.full((len(p),), s.row, dtype=torch.long)
                      for p, s in zip(positions, micro_batch.spans, strict=True)])
    rows = rows.to(device)
    if micro_batch.packed and not keep_logits:
        logits = model(**kwargs, logits_to_keep=flat_positions).logits[0]  # [N, vocab]
        selected = logits
    else:
        logits = model(**kwargs).logits
        selected = logits[rows, flat_positions]
    targets = micro_batch.input_ids[rows, flat_positions + 1]
    log_probs, entropy = token_log_probs_and_entropy(
        selected, targets, temperature=temperature, chunk_size=chunk_size, with_entropy=with_entropy
    )
    sizes = [len(p) for p in positions]
    return ForwardOutput(
        list(log_probs.split(sizes)), list(entropy.split(sizes)) if entropy is not None else None,
        logits if keep_logits else None,
    )


def forward_values(model: nn.Module, micro_batch: MicroBatch) -> list[torch.Tensor]:
    """The critic's value for every response token of every sample (float32)."""
    kwargs = dict(input_ids=micro_batch.input_ids, position_ids=micro_batch.position_ids,
                  attention_mask=micro_batch.attention_mask, use_cache=False)
    if micro_batch.is_empty:
        raise ValueError("an empty micro-batch has no responses to score; run zero_loss_pass instead")
    scores = model(**kwargs).logits[..., 0].float()  # [rows, length]
    out = []
    for span in micro_batch.spans:
        p = span.logit_positions
        out.append(scores[span.row, p.start : p.stop])
    return out


def zero_loss_pass(model: nn.Module, micro_batch: MicroBatch) -> torch.Tensor:
    """A forward pass whose loss is exactly 0 but touches every parameter.

    A rank with fewer micro-batches than its peers runs these so FSDP's all-gathers and gradient
    reduce-scatters still pair up across ranks; the zero gradient changes nothing.
    """
    out = model(input_ids=micro_batch.input_ids, position_ids=micro_batch.position_ids,
                attention_mask=micro_batch.attention_mask, use_cache=False)
    return out.logits.float().sum() * 0.0
