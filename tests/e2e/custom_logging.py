"""Custom log functions for the e2e tests (``--custom-rollout-log-function-path custom_logging:...``)."""

from __future__ import annotations


def log_rollout_and_suppress_default(rollout_id, args, samples, metrics, rollout_time):
    """Log one metric of its own, print from the rollout manager's process, suppress the default logging."""
    metrics["custom/num_samples"] = float(len(samples))
    print(f"custom rollout log: rollout {rollout_id} has {len(samples)} samples", flush=True)
    return True
