"""Errors of the gateway's services, free of HTTP; `gateway.middlewares` renders them."""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """A refusal with a stable problem code and a message safe to show the caller."""

    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthenticated(GatewayError):
    """No valid caller identity."""

    code = "unauthenticated"


class Forbidden(GatewayError):
    """The caller is known but may not do this (within its own customer)."""

    code = "forbidden"


class NotFound(GatewayError):
    """No such object for this caller (also for another customer's objects: no existence leak)."""

    code = "not_found"


class Conflict(GatewayError):
    """The request conflicts with the current state (a duplicate name, a second bootstrap)."""

    code = "conflict"
