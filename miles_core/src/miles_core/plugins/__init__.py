"""The plugin system: hookspecs, spec types, the manager and entry-point loading."""
