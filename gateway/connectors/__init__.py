"""Connectors: definitions, scripts, icons and development runs (SPEC 4.2)."""
