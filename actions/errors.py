"""Refusals of the action endpoint that no platform service raises (free of HTTP)."""

from __future__ import annotations

from gateway.errors import GatewayError


class IdempotencyKeyReused(GatewayError):
    """An `Idempotency-Key` already answered another request (method, path, query or body)."""

    code = "idempotency_key_reused"
