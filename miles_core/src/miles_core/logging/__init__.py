"""Metric sinks (stdout, JSONL, wandb, TensorBoard) as plugins, the fan-out that feeds them, and ``miles plot``."""
