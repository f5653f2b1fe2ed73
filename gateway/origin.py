"""App instances on their own origins (SPEC 4.2, decision 0018): the middleware that keeps
a request on an instance origin inside its instance.

A request whose `Host` is an instance origin never reaches the gateway's route table,
except the paths apps call (`/domo/...`), and those only with a session of that instance:
the middleware sets `PRINCIPAL` and `APP_INSTANCE` from it, so the handlers behind answer as
on the gateway's origin. Everything else there is the session exchange or the app's files.
"""

from __future__ import annotations

import secrets
from http import HTTPStatus
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.apps.pages import (
    HTML,
    NOT_FOUND_PAGE,
    PLAIN_PAGE_POLICY,
    UNAUTHENTICATED_PAGE,
    content_security_policy,
    content_type,
    inject_session,
)
from gateway.apps.sessions import AppSession
from gateway.errors import Forbidden
from gateway.keys import APP_INSTANCE, APP_SESSIONS, APPS, INSTANCE_ORIGINS, PRINCIPAL
from gateway.problems import ProblemError

# Where the instance origin trades a one-time code for a session (reserved: an app file of
# this name is never served).
EXCHANGE_PATH: Final = "/__gateway/session"
# The gateway routes an instance origin serves: the endpoints apps call (SPEC 4.1).
INSTANCE_ROUTES: Final = ("/domo/",)
SESSION_HEADER: Final = "X-DOMO-Ryuu-Session"
SESSION_QUERY: Final = "ryuu_sid"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Every answer of an instance origin: session ids may be in URLs (`?ryuu_sid=`), so no
# Referer ever leaves the page; and no type is ever guessed.
_ALWAYS: Final = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}

log = structlog.get_logger(__name__)


def session_cookie(secure: bool) -> str:
    """The cookie's name; on https the `__Host-` prefix makes browsers enforce host-only."""
    return "__Host-ryuu_sid" if secure else "ryuu_sid"


@web.middleware
async def instance_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve an instance origin's request inside its instance; pass the gateway's own on."""
    instance_id = request.app[INSTANCE_ORIGINS].instance_of(request.host)
    if instance_id is None:
        return await handler(request)
    if request.path == EXCHANGE_PATH:
        return await _exchange(request, instance_id)
    if request.path.startswith(INSTANCE_ROUTES):
        return await _route(request, handler, instance_id)
    return await _static(request, instance_id)


async def instance_origin_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the headers every answer of an instance origin carries, problems included (an
    `on_response_prepare` signal: it also sees answers rendered from exceptions)."""
    if request.app[INSTANCE_ORIGINS].instance_of(request.host) is not None:
        response.headers.update(_ALWAYS)


async def _route(request: web.Request, handler: Handler, instance_id: str) -> web.StreamResponse:
    """A `/domo/...` request: the session's caller, then the gateway's handler.

    `Authorization` is ignored here: the session alone says who calls (decision 0018).

    Raises:
        ProblemError: 401 `unauthenticated` without a live session of this instance
            (never a redirect: apps read JSON).
        Forbidden: a state-changing request from another origin.
    """
    found = await _session(request, instance_id, query=False)
    if found is None:
        raise ProblemError(
            "unauthenticated",
            "no session of this app instance: open the app from the gateway again",
        )
    session, _, from_cookie = found
    _check_same_origin(request, instance_id, from_cookie=from_cookie)
    request[PRINCIPAL] = session.principal
    request[APP_INSTANCE] = instance_id
    structlog.contextvars.bind_contextvars(
        user_id=session.principal.user_id,
        customer_id=session.principal.customer_id,
        app_instance_id=instance_id,
    )
    return await handler(request)


def _check_same_origin(request: web.Request, instance_id: str, *, from_cookie: bool) -> None:
    """Refuse a state-changing request that a page of another origin sent (THREATS I8).

    Other instances are same-site (one parent domain), so `SameSite` alone does not stop
    them; `Origin` does. Without `Origin`, `Sec-Fetch-Site` decides; with neither, only a
    session sent in the header is accepted (no page of another origin can set it).

    Raises:
        Forbidden: with the reason.
    """
    if request.method in SAFE_METHODS:
        return
    own = request.app[INSTANCE_ORIGINS].origin(instance_id)
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if origin is not None and origin.lower() != own:
        raise Forbidden(
            f"a {request.method} from origin {origin[:200]!r} is refused: "
            f"only pages of this app instance ({own}) may change anything here"
        )
    if site is not None and site.lower() != "same-origin":
        raise Forbidden(
            f"a {request.method} from a {site[:50]!r} page is refused: "
            "only pages of this app instance may change anything here"
        )
    if origin is None and site is None and from_cookie:
        raise Forbidden(
            f"a {request.method} with the session cookie must carry an Origin header; "
            f"send the session in {SESSION_HEADER} instead"
        )


def _presented(request: web.Request, *, query: bool) -> tuple[str | None, bool]:
    """The session id the request presents, and whether it came from the cookie.

    The first present of: the header, `?ryuu_sid=` (when `query`), the cookie. A bad one is
    not made up for by another: a page sends what it has.
    """
    presented = request.headers.get(SESSION_HEADER)
    if presented is None and query:
        presented = request.query.get(SESSION_QUERY)
    if presented is not None:
        return presented, False
    return request.cookies.get(session_cookie(request.app[INSTANCE_ORIGINS].secure)), True


async def _session(
    request: web.Request, instance_id: str, *, query: bool
) -> tuple[AppSession, str, bool] | None:
    """The live session the request presents, its id, and whether it came from the cookie."""
    secret, from_cookie = _presented(request, query=query)
    if secret is None:
        return None
    session = await request.app[APP_SESSIONS].resolve(instance_id, secret)
    return None if session is None else (session, secret, from_cookie)


async def _exchange(request: web.Request, instance_id: str) -> web.Response:
    """Trade the one-time `code` for a session: the cookie, then 302 to `/`."""
    code = request.query.get("code", "")
    opened = None
    if request.method == "GET" and code:
        opened = await request.app[APP_SESSIONS].exchange(instance_id, code)
    if opened is None:
        log.info("app_session_refused", app_instance_id=instance_id)
        return _page(UNAUTHENTICATED_PAGE, HTTPStatus.UNAUTHORIZED)
    sessions = request.app[APP_SESSIONS]
    response = web.Response(
        status=HTTPStatus.FOUND, headers={"Location": "/", "Cache-Control": "no-store"}
    )
    # Host-only (no Domain): other instances, under the same parent domain, never see it.
    response.set_cookie(
        session_cookie(request.app[INSTANCE_ORIGINS].secure),
        opened.secret,
        path="/",
        max_age=int(sessions.ttl.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=request.app[INSTANCE_ORIGINS].secure,
    )
    log.info(
        "app_session_opened",
        app_instance_id=instance_id,
        user_id=opened.session.principal.user_id,
        session_id=opened.session.id,
    )
    return response


async def _static(request: web.Request, instance_id: str) -> web.Response:
    """One of the app's files, to a holder of the session; pages get the session script."""
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    found = await _session(request, instance_id, query=True)
    if found is None:
        return _page(UNAUTHENTICATED_PAGE, HTTPStatus.UNAUTHORIZED)
    session, secret, _ = found
    path = request.path.removeprefix("/")
    if not path or path.endswith("/"):
        path += "index.html"
    kind = content_type(path)
    etag = f'"{session.app_id}"'  # an app's files never change: a new version is a new app
    if not kind.startswith(HTML) and etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=HTTPStatus.NOT_MODIFIED, headers={"ETag": etag})
    customer_id = session.principal.customer_id
    content = await request.app[APPS].file(customer_id, session.app_id, path)
    if content is None:
        return _page(NOT_FOUND_PAGE, HTTPStatus.NOT_FOUND)
    if kind.startswith(HTML):
        return _app_page(content, secret)
    return web.Response(
        body=content,
        headers={
            "Content-Type": kind,
            "ETag": etag,
            # The files are the session holder's: revalidated (a cheap 304) each time.
            "Cache-Control": "private, no-cache",
        },
    )


def _app_page(content: bytes, secret: str) -> web.Response:
    """An app page with its session script and a fresh nonce; never stored."""
    nonce = secrets.token_urlsafe(16)
    return web.Response(
        body=inject_session(content, secret, nonce),
        headers={
            "Content-Type": content_type("index.html"),
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(nonce),
        },
    )


def _page(body: bytes, status: HTTPStatus) -> web.Response:
    return web.Response(
        status=status,
        body=body,
        headers={
            "Content-Type": content_type("page.html"),
            "Cache-Control": "no-store",
            "Content-Security-Policy": PLAIN_PAGE_POLICY,
        },
    )
