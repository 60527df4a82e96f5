"""Choosing the next token of every row of a batch, each row with its own sampling parameters and seed.

Which log-prob is reported
--------------------------
The reported log-prob of a token is ``log_softmax(logits / T)[token]`` (``T = 1`` for greedy rows): the
tempered distribution *before* any truncation or penalty. It is the quantity the trainer recomputes from
its own forward pass (``log_softmax(logits / rollout_temperature)``), so rollout and training log-probs
are comparable token for token, and it is what SGLang reports by default (SGLang also reports the
un-truncated value when top-p/top-k are on).

What is sampled
---------------
Sampling follows SGLang's order and semantics:

1. logit bias, frequency/presence penalties (over generated tokens) and the repetition penalty (over
   prompt and generated tokens; CTRL's rule: positive logits divided, negative ones multiplied) change
   the raw logits, which are then divided by the temperature;
2. banned tokens (EOS and stop tokens while ``min_new_tokens`` is not reached) get ``-inf``;
3. top-k, top-p and min-p each remove tokens judged on the *same* untruncated probabilities
   (a token survives only if it passes all three), then the survivors are renormalised.

Top-k/top-p/min-p therefore change which tokens can be drawn, never the reported log-prob; penalties and
banned tokens likewise. A row whose filters leave a token reported with log-prob ``x`` was sampled with
probability ``>= exp(x)`` (renormalisation only raises it).

Each sampled row draws one uniform number per step from its own ``torch.Generator`` and inverts the
cumulative distribution, so a row's tokens depend only on its seed and its logits, never on the other
rows in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from miles_core.engines.embedded.params import SamplingParams


@dataclass
class BatchSampling:
    """Per-row sampling parameters as tensors (one entry per row of the running batch)."""

    temperature: torch.Tensor  # [B] float, 1.0 for greedy rows
    greedy: torch.Tensor  # [B] bool
    top_k: torch.Tensor  # [B] long, vocab size when off
    top_p: torch.Tensor  # [B] float
    min_p: torch.Tensor  # [B] float
    needs_filter: bool  # whether any sampled row uses top-k, top-p or min-p

    @classmethod
    def from_params(cls, params: list[SamplingParams], vocab_size: int, device: torch.device) -> BatchSampling:
        greedy = [p.greedy for p in params]
        top_k = [vocab_size if p.top_k < 0 else min(p.top_k, vocab_size) for p in params]
        return cls(
            temperature=torch.tensor([1.0 if g else p.temperature for p, g in zip(params, greedy, strict=True)], device=device),
            greedy=torch.tensor(greedy, dtype=torch.bool, device=device),
            top_k=torch.tensor(top_k, dtype=torch.long, device=device),
            top_p=torch.tensor([p.top_p for p in params], device=device),
            min_p=torch.tensor([p.min_p for p in params], device=device),
            needs_filter=any(
                not g and (k < vocab_size or p.top_p < 1.0 or p.min_p > 0.0) for p, g, k in zip(params, greedy, top_k, strict=True)
            ),
        )


def tempered_log_probs(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits / T)`` in float32, row-wise: the log-probs every API reports."""
    return torch.log_softmax(logits.float() / temperature.unsqueeze(-1), dim=-1)


def apply_penalties(
    logits: torch.Tensor,
    params: list[SamplingParams],
    prompt_ids: list[list[int]],
    output_ids: list[list[int]],
) -> torch.Tensor:
    """Logit bias, frequency/presence penalties (OpenAI's definition) and repetition penalty (CTRL, Keskar
    et al. 2019, eq. 1 as implemented by HF and SGLang), applied in place to the raw (untempered) logits
    of the rows that ask for them."""
    vocab = logits.shape[-1]
    for row, p in enumerate(params):
        if not p.has_penalties:
            continue
        row_logits = logits[row]
        device = row_logits.device
        for token, bias in p.logit_bias:
            if 0 <= token < vocab:
                row_logits[token] += bias
        if (p.frequency_penalty or p.presence_penalty) and output_ids[row]:
            counts = torch.bincount(torch.tensor(output_ids[row], device=device), minlength=vocab)[:vocab].float()
            row_logits -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).float()
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(prompt_ids[row]) | set(output_ids[row])), dtype=torch.long, device=device)
            seen = seen[seen < vocab]
            values = row_logits[seen]
            row_logits[seen] = torch.where(values > 0, values / p.repetition_penalty, values * p.repetition_penalty)
    return logits


def sample_tokens(
    sampling_logits: torch.Tensor,
    sampling: BatchSampling,
    uniforms: torch.Tensor,
) -> torch.Tensor:
    """Pick one token per row from already tempered (and penalised, banned) logits ``[B, V]``.

    ``uniforms`` holds one number in ``(0, 1]`` per row (ignored for greedy rows).
    """
    tokens = torch.argmax(sampling_logits, dim=-1)
    sampled = ~sampling.greedy
    if not bool(sampled.any()):
        return tokens
    rows = sampled.nonzero(as_tuple=True)[0]
    logits = sampling_logits[rows]
    u = uniforms.to(logits.device)[rows]
    probs = torch.softmax(logits, dim=-1)
    if sampling.needs_filter:
        probs_sorted, order = probs.sort(dim=-1, descending=True)
        ranks = torch.arange(probs.shape[-1], device=probs.device).unsqueeze(0)
        keep = ranks < sampling.top_k[rows].unsqueeze(-1)
        keep &= (probs_sorted.cumsum(-1) - probs_sorted) < sampling.top_p[rows].unsqueeze(-1)
        keep &= probs_sorted >= probs_sorted[:, :1] * sampling.min_p[rows].unsqueeze(-1)
        weights = probs_sorted * keep
        picked = _invert_cdf(weights, u)
        tokens[rows] = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
    else:
        tokens[rows] = _invert_cdf(probs, u)
    return tokens


def _invert_cdf(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index ``i`` with ``cdf[i-1] < u * total <= cdf[i]``: an exact draw from ``weights / total``."""
    cdf = weights.cumsum(-1)
    target = (u * cdf[:, -1]).unsqueeze(-1)
    index = torch.searchsorted(cdf, target).squeeze(-1)
    return index.clamp_(max=weights.shape[-1] - 1)


def draw_uniforms(generators: list[torch.Generator | None]) -> torch.Tensor:
    """One number in ``(0, 1]`` per row from that row's own generator (``1.0`` for greedy rows)."""
    return torch.tensor([1.0 - float(torch.rand((), generator=g)) if g is not None else 1.0 for g in generators])
