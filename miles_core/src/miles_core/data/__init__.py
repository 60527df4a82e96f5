"""Samples, groups and prompt data sources."""
