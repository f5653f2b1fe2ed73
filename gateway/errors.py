"""Errors of the gateway's services, free of HTTP; `gateway.middlewares` renders them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class GatewayError(Exception):
    """A refusal with a stable problem code and a message safe to show the caller."""

    code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # Seconds after which the caller may try again, when that is known (Retry-After).
        self.retry_after = retry_after
        # Extension members of the problem (a failed run's `run_id`), shown to the caller.
        self.extra = dict(extra or {})


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


class ValidationFailed(GatewayError):
    """A body that parses but breaks the rules (a field the connector does not declare)."""

    code = "validation_failed"

    def __init__(self, detail: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class AccountNotAccessible(GatewayError):
    """The account belongs to the caller's customer but is neither the caller's nor shared."""

    code = "account_not_accessible"


class ProviderMismatch(GatewayError):
    """The account is for another data provider than the connector."""

    code = "provider_mismatch"


class CredentialsRejected(GatewayError):
    """The connector's auth script refused the credentials; `detail` is its own message."""

    code = "credentials_rejected"


class AccountNeedsReauth(GatewayError):
    """The account's OAuth grant is gone; the user must authorise again."""

    code = "account_needs_reauth"
