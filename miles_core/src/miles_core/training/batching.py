"""How one rollout batch becomes optimizer steps, data-parallel shares and micro-batches.

The order of operations (Miles's FSDP backend, anatomy §11):

1. :func:`split_into_steps` — the rollout's samples, in order, are cut into ``--num-steps-per-rollout``
   contiguous chunks, one per optimizer step (the global batch of that step).
2. :func:`split_across_ranks` — each step's samples are shared out over the data-parallel ranks
   (balanced by token count with ``--balance-data``).
3. :func:`plan_micro_batches` — each rank cuts its share into micro-batches: fixed
   ``--micro-batch-size`` sample counts, or, with ``--use-dynamic-batch-size``, as few micro-batches as
   fit under ``--max-tokens-per-gpu`` tokens, balanced by tokens. Every rank must run the same number
   of forward/backward passes (FSDP's collectives pair up), so the count is agreed on first
   (``min_count``) and a rank with fewer samples runs empty micro-batches.
4. :func:`collate` — the samples of a micro-batch become model inputs: **packed** (one row, no
   padding, position ids restarting at 0 for each sample so attention stays within a sample) or
   **padded** (one row per sample, right padding and an attention mask).

Everything here is pure index arithmetic plus one tensor build, so it is unit-tested without a model.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "MicroBatch",
    "SampleSpan",
    "split_into_steps",
    "split_across_ranks",
    "plan_micro_batches",
    "count_dynamic_micro_batches",
    "collate",
]


@dataclass(frozen=True)
class SampleSpan:
    """Where one sample sits in a collated micro-batch.

    ``row`` and ``offset`` locate the first token of the sample; the response covers the last
    ``response_length`` of its ``total_length`` tokens. The logits that predict those response tokens
    are at positions ``offset + total_length - response_length - 1 … offset + total_length - 2``.
    """

    sample_index: int
    row: int
    offset: int
    total_length: int
    response_length: int

    @property
    def logit_positions(self) -> range:
        start = self.offset + self.total_length - self.response_length - 1
        return range(start, start + self.response_length)


@dataclass
class MicroBatch:
    """Model inputs for a few samples, and where each sample's response is in them."""

    input_ids: torch.Tensor  # [rows, length]
    position_ids: torch.Tensor  # [rows, length]
    attention_mask: torch.Tensor | None  # [rows, length] for padded batches; None when packed
    spans: list[SampleSpan]
    packed: bool

    @property
    def sample_indices(self) -> list[int]:
        return [span.sample_index for span in self.spans]

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens: what throughput is counted in."""
        return sum(span.total_length for span in self.spans)

    @property
    def is_empty(self) -> bool:
        return not self.spans

    def to(self, device: torch.device | str) -> MicroBatch:
        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        return MicroBatch(self.input_ids.to(device), self.position_ids.to(device), mask, self.spans, self.packed)


def split_into_steps(num_samples: int, num_steps: int) -> list[range]:
    """Cut ``num_samples`` samples into ``num_steps`` contiguous chunks of (near) equal size.

    With the four-knob invariant the sizes are exactly ``--global-batch-size``; when filters left a
    different count, the first chunks get one extra sample each.
    """
    if num_steps < 1:
        raise ValueError(f"--num-steps-per-rollout must be at least 1, got {num_steps}")
    if num_samples < num_steps:
        raise ValueError(
            f"the rollout batch has {num_samples} samples, fewer than --num-steps-per-rollout {num_steps}: "
            "every optimizer step needs at least one sample"
        )
    base, extra = divmod(num_samples, num_steps)
    chunks, start = [], 0
    for step in range(num_steps):
        size = base + (1 if step < extra else 0)
        chunks.append(range(start, start + size))
        start += size
    return chunks


def split_across_ranks(
    sample_indices: Sequence[int], lengths: Sequence[int], world_size: int, balance: bool = False
) -> list[list[int]]:
    """Share one step's samples out over ``world_size`` data-parallel ranks.

    Without ``balance`` rank ``r`` gets a contiguous block (sizes differ by at most one). With
    ``balance`` (``--balance-data``) the samples go, longest first, to the rank with the fewest tokens
    so far (the LPT heuristic), each rank's list kept in rollout order.

    :param lengths: total token count of every sample of the rollout, indexed by sample index.
    """
    indices = list(sample_indices)
    if len(indices) < world_size:
        raise ValueError(
            f"an optimizer step has {len(indices)} samples for {world_size} data-parallel ranks; "
            "raise --global-batch-size (or lower --num-steps-per-rollout) so every rank gets a sample"
        )
    if not balance:
        base, extra = divmod(len(indices), world_size)
        shares, start = [], 0
        for rank in range(world_size):
            size = base + (1 if rank < extra else 0)
            shares.append(indices[start : start + size])
            start += size
        return shares
    return _balanced_bins(indices, lengths, world_size, equal_counts=True)


def count_dynamic_micro_batches(lengths: Sequence[int], max_tokens: int) -> int:
    """The fewest micro-batches of at most ``max_tokens`` tokens each (first-fit decreasing).

    A sample longer than ``max_tokens`` gets a micro-batch of its own.
    """
    if max_tokens <= 0:
        raise ValueError(f"--max-tokens-per-gpu must be positive, got {max_tokens}")
    bins: list[int] = []
    for length in sorted(lengths, reverse=True):
        for i, used in enumerate(bins):
            if used + length <= max_tokens:
                bins[i] += length
                break
        else:
            bins.append(length)
    return len(bins)


def plan_micro_batches(
    sample_indices: Sequence[int],
    lengths: Sequence[int],
    *,
    micro_batch_size: int | None = None,
    max_tokens: int | None = None,
    min_count: int = 0,
) -> list[list[int]]:
    """Cut one rank's samples into micro-batches (lists of sample indices, each in rollout order).

    Exactly one of ``micro_batch_size`` (fixed sample counts) and ``max_tokens`` (dynamic, token
    budget) is given. The result has ``max(needed, min_count)`` micro-batches; extra ones are empty
    (the caller runs them as zero-weight passes so collectives stay paired across ranks).
    """
    indices = list(sample_indices)
    if (micro_batch_size is None) == (max_tokens is None):
        raise ValueError("give exactly one of micro_batch_size and max_tokens")
    if micro_batch_size is not None:
        if micro_batch_size < 1:
            raise ValueError(f"--micro-batch-size must be at least 1, got {micro_batch_size}")
        batches = [indices[i : i + micro_batch_size] for i in range(0, len(indices), micro_batch_size)]
    else:
        count = max(count_dynamic_micro_batches([lengths[i] for i in indices], max_tokens), 1) if indices else 0
        count = max(count, min_count)
        # Balancing may overfill a bin that first-fit filled exactly; add bins until all fit.
        while True:
            batches = _balanced_bins(indices, lengths, count, equal_counts=False) if count else []
            fits = all(sum(lengths[i] for i in b) <= max_tokens or len(b) == 1 for b in batches)
            if fits or count >= len(indices):
                break
            count += 1
    batches = [b for b in batches if b] if micro_batch_size is None else batches
    while len(batches) < min_count:
        batches.append([])
    return batches


def _balanced_bins(indices: list[int], lengths: Sequence[int], count: int, equal_counts: bool) -> list[list[int]]:
    """Longest-processing-time-first: each sample, longest first, joins the lightest bin.

    With ``equal_counts`` a bin that already holds its share of samples is closed, so sample counts
    differ by at most one (what data-parallel ranks need for fixed micro-batch sizes).
    """
    capacity = -(-len(indices) // count) if equal_counts else len(indices)
    heap = [(0, b) for b in range(count)]
    bins: list[list[int]] = [[] for _ in range(count)]
    order = sorted(indices, key=lambda i: (-lengths[i], i))
    for i in order:
        closed = []
        while True:
            tokens, b = heapq.heappop(heap)
            if len(bins[b]) < capacity:
                break
            closed.append((tokens, b))
        bins[b].append(i)
        heapq.heappush(heap, (tokens + lengths[i], b))
        for item in closed:
            heapq.heappush(heap, item)
    return [sorted(b) for b in bins]


def collate(
    tokens: Sequence[Sequence[int]],
    response_lengths: Sequence[int],
    sample_indices: Sequence[int],
    *,
    packed: bool,
    pad_token_id: int = 0,
    pad_to_multiple_of: int = 1,
) -> MicroBatch:
    """Build model inputs for the samples ``sample_indices`` of a batch.

    Packed: one row holding every sample back to back, position ids ``0..len-1`` per sample, no
    attention mask (transformers derives a block-diagonal causal mask from the restarting position ids,
    and flash-attention uses them as varlen boundaries). Padded: one row per sample, right-padded to
    the longest (rounded up to ``pad_to_multiple_of``), with an attention mask.

    An empty ``sample_indices`` gives a one-token dummy batch with no spans (a zero-weight pass).
    """
    if not sample_indices:
        ids = torch.full((1, 1), pad_token_id, dtype=torch.long)
        return MicroBatch(ids, torch.zeros_like(ids), None, [], packed=True)
    lengths = [len(tokens[i]) for i in sample_indices]
    for i, length in zip(sample_indices, lengths, strict=True):
        if not 1 <= response_lengths[i] <= length - 1:
            raise ValueError(
                f"sample {i}: response_length {response_lengths[i]} does not fit its {length} tokens "
                "(a sample needs at least one prompt token and one response token)"
            )
    if packed:
        total = sum(lengths)
        width = -(-total // pad_to_multiple_of) * pad_to_multiple_of
        input_ids = torch.full((1, width), pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((1, width), dtype=torch.long)
        spans, offset = [], 0
        for i, length in zip(sample_indices, lengths, strict=True):
            input_ids[0, offset : offset + length] = torch.as_tensor(tokens[i], dtype=torch.long)
            position_ids[0, offset : offset + length] = torch.arange(length)
            spans.append(SampleSpan(i, 0, offset, length, response_lengths[i]))
            offset += length
        if width > total:  # trailing padding is its own "sample" that nothing reads
            position_ids[0, total:] = torch.arange(width - total)
        return MicroBatch(input_ids, position_ids, None, spans, packed=True)
    width = -(-max(lengths) // pad_to_multiple_of) * pad_to_multiple_of
    rows = len(sample_indices)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, width), dtype=torch.long)
    spans = []
    for row, (i, length) in enumerate(zip(sample_indices, lengths, strict=True)):
        input_ids[row, :length] = torch.as_tensor(tokens[i], dtype=torch.long)
        attention_mask[row, :length] = 1
        spans.append(SampleSpan(i, row, 0, length, response_lengths[i]))
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return MicroBatch(input_ids, position_ids, attention_mask, spans, packed=False)
