"""``--normalize-advantages`` whitens over the whole data-parallel group, not per rank (2 gloo ranks)."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from miles_core.engines.process import free_port

# rank 0 holds advantages [1, 2] (and one untrained 50), rank 1 holds [3, 4]: global mean 2.5,
# unbiased var (Σa²/N − μ²)·N/(N−1) = (30/4 − 6.25)·4/3 = 5/3
SHARDS = {0: ([[1.0, 50.0], [2.0]], [[1, 0], [1]]), 1: ([[3.0, 4.0]], [[1, 1]])}


def _rank_main(rank: int, port: int, results) -> None:
    from miles_core.training.advantages import masked_whiten

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        values, masks = SHARDS[rank]
        out = masked_whiten([torch.tensor(v) for v in values], [torch.tensor(m) for m in masks])
        results[rank] = [o.tolist() for o in out]
    finally:
        dist.destroy_process_group()


def test_whitening_uses_group_statistics():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank_main, args=(free_port(), results), nprocs=2, join=True)
        results = dict(results)
    std = math.sqrt(5 / 3 + 1e-8)
    expected = {0: [[(1 - 2.5) / std, 0.0], [(2 - 2.5) / std]], 1: [[(3 - 2.5) / std, (4 - 2.5) / std]]}
    for rank in (0, 1):
        for got, want in zip(results[rank], expected[rank], strict=True):
            assert all(abs(g - w) < 1e-6 for g, w in zip(got, want, strict=True))
