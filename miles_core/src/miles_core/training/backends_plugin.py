"""The built-in train backends, registered like any third-party backend.

Nothing heavy is imported here: the spec names its actor class as a ``"module:Class"`` string, which
the train group imports inside each Ray worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import TrainBackendSpec


@hookimpl
def miles_train_backends() -> Iterable[TrainBackendSpec]:
    yield TrainBackendSpec(
        name="fsdp",
        description="PyTorch FSDP2 over the HF model of --hf-checkpoint (NCCL on GPU, gloo on CPU)",
        actor_class="miles_core.training.fsdp.actor:FsdpTrainActor",
    )
