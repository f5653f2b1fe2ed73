"""Who is calling: the bearer-token middleware and the checks handlers make."""

from __future__ import annotations

from typing import Final, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import Forbidden
from gateway.identity.principal import Principal, Role
from gateway.keys import IDENTITY, PRINCIPAL
from gateway.problems import ProblemError

_CHALLENGE: Final = 'Bearer realm="gateway"'

HandlerT = TypeVar("HandlerT", bound=Handler)

# Handlers that answer everyone, whatever `Authorization` says: probes and scrapers send
# whatever their configuration holds, and a stale token must not fail a health check.
_PUBLIC_HANDLERS: Final[set[Handler]] = set()


def public(handler: HandlerT) -> HandlerT:
    """Mark a handler that needs no caller: its requests skip authentication entirely."""
    _PUBLIC_HANDLERS.add(handler)
    return handler


def _unauthenticated(detail: str, *, invalid: bool) -> ProblemError:
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid else "")
    return ProblemError("unauthenticated", detail, headers={"WWW-Authenticate": challenge})


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve `Authorization: Bearer` once; a presented but bad token is refused at once."""
    header = request.headers.get("Authorization")
    # A caller resolved already (an instance origin's session) is not asked again.
    resolved = PRINCIPAL in request
    if header is not None and not resolved and request.match_info.handler not in _PUBLIC_HANDLERS:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("use Authorization: Bearer <token>", invalid=True)
        principal = await request.app[IDENTITY].authenticate(token.strip())
        if principal is None:
            raise _unauthenticated("the token is not valid or was revoked", invalid=True)
        request[PRINCIPAL] = principal
        structlog.contextvars.bind_contextvars(
            user_id=principal.user_id, customer_id=principal.customer_id
        )
    return await handler(request)


def principal_of(request: web.Request, role: Role = Role.MEMBER) -> Principal:
    """The caller, who must hold at least `role`.

    Raises:
        ProblemError: 401 when nobody is signed in.
        Forbidden: the caller's role is too low.
    """
    principal: Principal | None = request.get(PRINCIPAL, None)
    if principal is None:
        raise _unauthenticated("sign in with Authorization: Bearer <token>", invalid=False)
    if not principal.role.includes(role):
        raise Forbidden(f"this needs the {role.value} role")
    return principal
