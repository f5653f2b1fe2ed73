"""Refusals of the connector services, with their own problem codes (free of HTTP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import Forbidden, GatewayError, NotFound, ValidationFailed


class Invalid(ValidationFailed):
    """The request is well formed but breaks a rule; `errors` say where (pydantic-style)."""

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail, [dict(error) for error in errors])


class InvalidParameters(Invalid):
    """Parameter values that do not fit the declared parameters."""

    code = "invalid_parameters"


class AccountsUnavailable(Invalid):
    """A run named an account, but no account source is configured."""


def field_error(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    """One `errors` entry."""
    return {"loc": list(loc), "msg": msg, "type": kind}


class ActionNotFound(NotFound):
    """No such action for this caller (also another customer's: no existence leak)."""

    code = "action_not_found"


class ScopeNotAllowed(Forbidden):
    """The caller may not give an action this scope, or take it away (SPEC 5)."""

    code = "scope_not_allowed"


class ScriptFailed(GatewayError):
    """A run ended in `datagrid.error`, an exception or another script error (SPEC 4.3)."""

    code = "script_failed"


class UpstreamUnavailable(GatewayError):
    """A run's upstream did not answer: refused, reset, unresolved, TLS, or too slow."""

    code = "upstream_unavailable"


class EgressRefused(GatewayError):
    """A run called a host the egress policy refuses."""

    code = "egress_refused"


class DeadlineExceeded(GatewayError):
    """A run's script was still working when its wall-clock deadline ended it."""

    code = "deadline_exceeded"
