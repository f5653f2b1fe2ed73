"""A browser for the instance-origin tests: every `*.apps.localhost` name is 127.0.0.1,
cookies are kept, and helpers place an app with files and open its instances."""

from __future__ import annotations

import socket
from http import HTTPStatus
from typing import Final

from aiohttp import ClientSession, CookieJar, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tests.gateway.apps.zips import make_zip
from tests.gateway.callers import Caller, Client

APPS_DOMAIN: Final = ".apps.localhost"
INDEX: Final = (
    b"<!DOCTYPE html><html><head><title>Board</title>"
    b'<script src="app.js"></script></head><body>board</body></html>'
)
FILES: Final = {
    "index.html": INDEX,
    "app.js": b"console.log('board');",
    "style.css": b"body { color: red; }",
    "logo.png": b"\x89PNG\r\n\x1a\nnot really",
    "data.bin": b"\x00\x01",
    "bare.html": b"<p>no head here</p>",
    "docs/index.html": b"<!doctype html><p>docs</p>",
}


class AppsResolver(AbstractResolver):
    """Resolves app instance names to loopback, and refuses every other name."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not host.endswith(APPS_DOMAIN):
            raise OSError(f"the test browser resolves only *{APPS_DOMAIN}, not {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


def new_browser() -> ClientSession:
    """A client with a cookie jar, resolving app instance names to loopback."""
    connector = TCPConnector(resolver=AppsResolver(), use_dns_cache=False)
    return ClientSession(connector=connector, cookie_jar=CookieJar())


def origin(client: Client, instance_id: str) -> str:
    """The instance's origin under the test's settings (the default template)."""
    return f"http://{instance_id}{APPS_DOMAIN}:{client.port}"


async def place_instance(
    client: Client, caller: Caller, files: dict[str, bytes] = FILES
) -> tuple[str, str]:
    """Upload an app with `files` and place an instance of it: `(app id, instance id)`."""
    response = await client.post(
        "/api/v1/apps",
        headers={**caller.headers, "Content-Type": "application/zip"},
        data=make_zip(files),
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    app_id = str((await response.json())["id"])
    response = await client.post(
        f"/api/v1/apps/{app_id}/instances", headers=caller.headers, json={}
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    return app_id, str((await response.json())["id"])


async def exchange_url(client: Client, caller: Caller, instance_id: str) -> str:
    """Where `GET /apps/{iid}/` sends the caller's browser: the exchange with a fresh code."""
    response = await client.get(
        f"/apps/{instance_id}/", headers=caller.headers, allow_redirects=False
    )
    assert response.status == HTTPStatus.FOUND, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


async def sign_in(browser: ClientSession, client: Client, caller: Caller, instance_id: str) -> str:
    """Open the instance in `browser` as `caller`; returns the session id it holds."""
    response = await browser.get(await exchange_url(client, caller, instance_id))
    assert response.status == HTTPStatus.OK, await response.text()
    assert str(response.url) == origin(client, instance_id) + "/"
    return session_of(browser, client, instance_id)


def session_of(browser: ClientSession, client: Client, instance_id: str) -> str:
    """The session cookie the browser holds for the instance's origin."""
    cookies = browser.cookie_jar.filter_cookies(URL(origin(client, instance_id)))
    return cookies["ryuu_sid"].value
