"""OAuth 2.0 endpoints (SPEC 4.2, 4.3, 6): start an authorisation, and the provider's callback.

`authorize` is called by a signed-in user, or by a browser with the one-time link the user
asked for with a POST (a browser sends no bearer header), and answers 302 to the provider.
The callback is where the provider sends the user's browser back: it carries no bearer token
(the pending authorisation names the user), answers a small HTML page by default and JSON
when the client asks for `application/json`. The page is `no-store`, has a CSP that allows
nothing, and never holds a token.
"""

from __future__ import annotations

import html
from http import HTTPStatus
from typing import Final

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from gateway.accounts.service import CredentialCheck
from gateway.auth import principal_of, public
from gateway.connectors.records import Connector
from gateway.errors import GatewayError, ValidationFailed
from gateway.identity.principal import Principal
from gateway.keys import OAUTH_FLOW, RUNS
from gateway.oauth.flow import Authorised, TokenExchangeUnavailable
from gateway.problems import PROBLEMS, ProblemError
from gateway.routes.accounts import credential_checker
from gateway.text import Identifier, Name
from gateway.wire import ParseModel, json_model, parse_body
from runtime.pool import PoolBusy, PoolClosed

log = structlog.get_logger(__name__)

MAX_NAME_LENGTH: Final = 200
# Browsers get the page; no script, style, image, form or frame may load in or around it.
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>{detail}</p>
<p>You can close this window.</p>
</body>
</html>
"""


class CallbackResult(BaseModel):
    """The callback's JSON answer."""

    account_id: str
    status: str
    reauthorised: bool


def _optional(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value if value else None


def _account_name(request: web.Request) -> str | None:
    raw = request.query.get("name")
    if raw is None:
        return None
    name = raw.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        message = f"name must have 1 to {MAX_NAME_LENGTH} characters"
        raise ValidationFailed(
            message, [{"loc": ["query", "name"], "msg": message, "type": "string_length"}]
        )
    return name


class LinkCreate(ParseModel):
    """`POST /api/v1/oauth/{connector_key}/authorize`: what the GET's query would say."""

    name: Name | None = Field(
        default=None, description="The new account's name, as the GET's query `name`"
    )
    account_id: Identifier | None = Field(
        default=None,
        description="The OAuth 2.0 account to re-authorise, as the GET's query `account_id`",
    )


class LinkOut(BaseModel):
    """The one-time link a browser opens without any header."""

    url: str


async def authorize(request: web.Request) -> web.Response:
    """Store a pending authorisation and send the browser to the provider (302).

    The caller is the bearer token's user, or the user a one-time `link` was issued to.
    """
    flow = request.app[OAUTH_FLOW]
    key = request.match_info["connector_key"]
    link = _optional(request, "link")
    if link is not None:
        url = await flow.start_from_link(key, link)
    else:
        url = await flow.start(
            principal_of(request),
            key,
            name=_account_name(request),
            account_id=_optional(request, "account_id"),
        )
    return web.Response(
        status=HTTPStatus.FOUND,
        headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def authorize_link(request: web.Request) -> web.Response:
    """A one-time link to `authorize` (60 s), for a browser that cannot send the token."""
    principal = principal_of(request)
    body = await parse_body(request, LinkCreate)
    url = await request.app[OAUTH_FLOW].issue_link(
        principal, request.match_info["connector_key"], name=body.name, account_id=body.account_id
    )
    return json_model(LinkOut(url=url), headers={"Cache-Control": "no-store"})


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return "application/json" in accept or "application/problem+json" in accept


def page(status: int, title: str, detail: str) -> web.Response:
    """The callback's HTML answer: what happened, escaped, never a token."""
    body = _PAGE.format(title=html.escape(title), detail=html.escape(detail))
    return web.Response(
        status=status, text=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )


def _refusal_page(exc: Exception) -> web.Response | None:
    """The page of a refusal, or None for an error that is not one (a 500)."""
    if isinstance(exc, GatewayError):
        status, title = PROBLEMS[exc.code]
        return page(status, title, exc.detail)
    if isinstance(exc, ProblemError):
        return page(exc.status, PROBLEMS[exc.code][1], exc.detail)
    if isinstance(exc, PoolBusy | PoolClosed):
        return page(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The gateway is busy",
            "The account could not be checked now: start the authorisation again later.",
        )
    return None


@public  # a browser sends no token; a stray one must not spoil the callback
async def callback(request: web.Request) -> web.Response:
    """Use the pending authorisation once: exchange the code, check the token, store."""
    as_json = _wants_json(request)
    runs = request.app[RUNS]

    def check_for(principal: Principal, connector: Connector) -> CredentialCheck:
        return credential_checker(runs, principal, connector)

    try:
        done = await request.app[OAUTH_FLOW].finish(
            state=_optional(request, "state"),
            code=_optional(request, "code"),
            error=request.query.get("error"),
            check_for=check_for,
        )
    except TokenExchangeUnavailable as exc:
        if as_json:
            raise
        log.info("request_refused", problem=exc.code)
        return page(HTTPStatus.BAD_GATEWAY, "The provider is unavailable", exc.detail)
    except Exception as exc:
        refusal = None if as_json else _refusal_page(exc)
        if refusal is None:
            raise  # the problem middleware renders it (JSON, or a 500)
        log.info("request_refused", problem=getattr(exc, "code", "service_unavailable"))
        return refusal
    return _success(done, as_json)


def _success(done: Authorised, as_json: bool) -> web.Response:
    account = done.account
    if as_json:
        result = CallbackResult(
            account_id=account.id, status=account.status, reauthorised=done.reauthorised
        )
        if done.reauthorised:
            return json_model(result, headers={"Cache-Control": "no-store"})
        return json_model(
            result,
            status=HTTPStatus.CREATED,
            headers={"Cache-Control": "no-store", "Location": f"/api/v1/accounts/{account.id}"},
        )
    if done.reauthorised:
        detail = f"The account “{account.name}” was authorised again and is ready to use."
        return page(HTTPStatus.OK, "Account authorised again", detail)
    return page(
        HTTPStatus.OK, "Account connected", f"The account “{account.name}” is ready to use."
    )


def register(app: web.Application) -> None:
    """Add the OAuth routes."""
    app.router.add_get("/api/v1/oauth/{connector_key}/authorize", authorize)
    app.router.add_post("/api/v1/oauth/{connector_key}/authorize", authorize_link)
    app.router.add_get("/api/v1/oauth/callback", callback)
