"""Tests of the metadata store (`gateway.store`)."""
