"""The train group: one Ray actor per rank, each holding the selected backend's actor class.

Every call fans out to all ranks with the same arguments (the backend does its collectives inside)
and returns rank 0's answer; the ranks' answers must agree, which the backend guarantees.
"""

from __future__ import annotations

import socket
from typing import Any

from miles_core.ray.placement import Placement


class TrainRankActor:
    """Runs inside a Ray actor: builds the plugin manager from the args, then the backend's rank."""

    def __init__(self, args: Any, rank: int, world_size: int):
        from miles_core.plugins.loading import load_object
        from miles_core.plugins.manager import plugin_manager_from_args

        self.args = args
        self.rank = rank
        pm = plugin_manager_from_args(args)
        spec = pm.get("train_backends", args.train_backend, flag="--train-backend")
        actor_class = load_object(spec.actor_class, flag=f"train backend {spec.name!r} actor_class")
        self.backend = actor_class(args, rank, world_size)

    def master_address(self) -> tuple[str, int]:
        """This node's address and a free port, for rank 0 to host the process group."""
        import ray

        with socket.socket() as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        address = ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"
        return address, port

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.backend, method)(*args, **kwargs)


class TrainGroup:
    """The driver-side handle on every rank."""

    def __init__(self, args: Any, placement: Placement):
        import ray

        layout = placement.layout
        self.world_size = layout.train_world_size
        options: dict[str, Any] = {"num_cpus": placement.cpus_per_bundle * (0.5 if layout.colocate else 1.0)}
        if layout.use_gpu:
            options = {"num_cpus": 0.5, "num_gpus": 0.4 if layout.colocate else 1.0}
        remote_cls = ray.remote(TrainRankActor)
        self.actors = [
            remote_cls.options(scheduling_strategy=placement.strategy(rank), **options).remote(args, rank, self.world_size)
            for rank in range(self.world_size)
        ]

    def _all(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        import ray

        return ray.get([actor.call.remote(method, *args, **kwargs) for actor in self.actors])

    def async_call(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Start ``method`` on every rank and return the object refs."""
        return [actor.call.remote(method, *args, **kwargs) for actor in self.actors]

    def init(self, args: Any) -> int:
        import ray

        address, port = ray.get(self.actors[0].master_address.remote())
        refs = [actor.call.remote("init", args, rank, self.world_size, address, port)
                for rank, actor in enumerate(self.actors)]
        return ray.get(refs)[0]

    def train(self, rollout_id: int, train_data_ref: Any) -> dict[str, Any]:
        return self._all("train", rollout_id, train_data_ref)[0]

    def update_weights(self, engine_urls: list[str], weight_version: str) -> dict[str, Any]:
        return self._all("update_weights", engine_urls, weight_version)[0]

    def save(self, rollout_id: int) -> str:
        return self._all("save", rollout_id)[0]

    def offload(self) -> None:
        self._all("offload")

    def onload(self) -> None:
        self._all("onload")

    def export_hf(self, path: str) -> str:
        return self._all("export_hf", path)[0]

    def kill(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
