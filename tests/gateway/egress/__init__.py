"""Tests of `gateway.egress` (THREATS E1-E9)."""
