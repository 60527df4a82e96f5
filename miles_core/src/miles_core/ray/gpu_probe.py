"""Which GPU ids a placement-group bundle holds (each bundle is probed by a tiny task scheduled on it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _gpu_ids_here() -> list[int]:
    import ray

    return [int(i) for i in ray.get_gpu_ids()]


def bundle_gpu_ids(placement: Any, bundles: Iterable[int]) -> list[int]:
    import ray

    probe = ray.remote(num_gpus=0.01, num_cpus=0)(_gpu_ids_here)
    ids: list[int] = []
    for bundle in bundles:
        ids += ray.get(probe.options(scheduling_strategy=placement.strategy(bundle)).remote())
    return ids
