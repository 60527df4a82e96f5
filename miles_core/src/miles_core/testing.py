"""Pytest fixtures for plugin authors (registered through the ``pytest11`` entry point).

Filled in by the foundation work; see ``miles_core.testing`` docs in the README.
"""
