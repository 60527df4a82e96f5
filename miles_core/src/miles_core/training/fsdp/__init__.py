"""The FSDP2 train backend: HF models sharded with ``fully_shard``, gloo on CPU and NCCL on GPU.

The entry point is :class:`miles_core.training.fsdp.actor.FsdpTrainActor` (imported lazily by the
``fsdp`` :class:`~miles_core.plugins.types.TrainBackendSpec`).
"""
