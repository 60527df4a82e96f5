"""Filters of a rollout: dynamic sampling (per group), buffer (at dequeue) and per sample."""
