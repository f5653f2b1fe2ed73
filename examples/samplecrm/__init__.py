"""The documentation's Sample CRM connector: scripts, icons, definition and a local API."""
