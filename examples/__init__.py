"""Runnable examples: the documentation's Sample CRM connector and a local API for it."""
