"""One module per flag group of ``miles train``, in the order ``--help`` shows them.

Each module has one ``add_arguments(parser)`` function that creates its argument group. The groups and
their flags follow Miles's flag reference (Cluster, Model and checkpoints, Rollout, Eval, Parallelism,
RL algorithm, Optimizer, Reward and filters, SGLang and router, MTP, Fault tolerance, Async / partial
rollout, Logging, Profiling, Debugging), plus the core flags that select plugins.
"""

from __future__ import annotations

from miles_core.config.flags import (
    algorithm,
    async_rollout,
    cluster,
    debugging,
    evaluation,
    fault_tolerance,
    metrics_logging,
    model,
    mtp,
    optimizer,
    parallelism,
    plugins,
    profiling,
    reward,
    rollout_data,
    rollout_sampling,
    sglang_router,
    trainer_hooks,
)

#: The flag-group modules in ``--help`` order.
GROUP_MODULES = (
    plugins,
    cluster,
    model,
    rollout_data,
    rollout_sampling,
    evaluation,
    parallelism,
    algorithm,
    optimizer,
    reward,
    sglang_router,
    mtp,
    fault_tolerance,
    async_rollout,
    metrics_logging,
    profiling,
    debugging,
    trainer_hooks,
)

__all__ = ["GROUP_MODULES"]
