"""Placement groups: which bundle each train rank and each rollout engine runs on.

One placement group holds every bundle of the run (strategy PACK, as Miles): first the actor's
``actor_num_nodes × actor_num_gpus_per_node`` bundles, then the rollout engines' bundles. With
``--colocate`` the engines reuse the actor's bundles. Without GPUs the bundles are CPU bundles sized so
that the whole run fits the cluster's CPUs (on a 2-core laptop every bundle gets a fraction of a CPU:
Ray only uses the numbers for scheduling, the processes still share the cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Layout:
    """The process layout of a run, computed from the flags alone (``miles train`` prints it)."""

    use_gpu: bool
    train_world_size: int
    num_engines: int
    gpus_per_engine: int
    colocate: bool

    @property
    def num_bundles(self) -> int:
        rollout = 0 if self.colocate else self.num_engines * (self.gpus_per_engine if self.use_gpu else 1)
        return self.train_world_size + rollout

    def engine_first_bundle(self, engine_index: int) -> int:
        if self.colocate:
            return (engine_index * self.gpus_per_engine) % max(self.train_world_size, 1)
        return self.train_world_size + engine_index * (self.gpus_per_engine if self.use_gpu else 1)


def compute_layout(args: Any, cluster_gpus: float) -> Layout:
    use_gpu = cluster_gpus > 0
    train_world_size = 0 if args.debug_rollout_only else args.actor_num_nodes * args.actor_num_gpus_per_node
    if args.debug_train_only:
        num_engines = 0
    elif use_gpu:
        rollout_gpus = train_world_size if args.colocate else (args.rollout_num_gpus or train_world_size or 1)
        num_engines = max(rollout_gpus // args.rollout_num_gpus_per_engine, 1)
    else:
        num_engines = max((args.rollout_num_gpus or 1) // args.rollout_num_gpus_per_engine, 1)
    colocate = bool(args.colocate) and train_world_size > 0 and num_engines > 0
    return Layout(use_gpu, train_world_size, num_engines, args.rollout_num_gpus_per_engine, colocate)


@dataclass
class Placement:
    layout: Layout
    placement_group: Any
    cpus_per_bundle: float

    def strategy(self, bundle_index: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(
            placement_group=self.placement_group, placement_group_bundle_index=bundle_index,
            placement_group_capture_child_tasks=True,
        )

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.placement_group)


def create_placement(args: Any, timeout_s: float = 120.0) -> Placement:
    """Reserve every bundle of the run; a cluster too small is an error saying what is missing."""
    import ray
    from ray.util.placement_group import placement_group

    resources = ray.cluster_resources()
    layout = compute_layout(args, resources.get("GPU", 0.0))
    count = max(layout.num_bundles, 1)
    if layout.use_gpu:
        if resources.get("GPU", 0) < count:
            raise RuntimeError(
                f"this run needs {count} GPUs ({layout.train_world_size} for training "
                f"(--actor-num-nodes × --actor-num-gpus-per-node) + {count - layout.train_world_size} for rollout "
                f"(--rollout-num-gpus)), but the Ray cluster has {resources.get('GPU', 0):g}"
            )
        cpus_per_bundle = 1.0
        bundles = [{"GPU": 1, "CPU": cpus_per_bundle} for _ in range(count)]
    else:
        # Leave room for the rollout manager and the engine actors' own scheduling.
        cpus_per_bundle = round(min(1.0, resources.get("CPU", 1.0) / (count + 1)), 3)
        bundles = [{"CPU": cpus_per_bundle} for _ in range(count)]
    group = placement_group(bundles, strategy="PACK")
    ready, _ = ray.wait([group.ready()], timeout=timeout_s)
    if not ready:
        raise RuntimeError(f"Ray could not reserve {count} bundles {bundles[0]} within {timeout_s:.0f}s: {resources}")
    return Placement(layout, group, cpus_per_bundle)
