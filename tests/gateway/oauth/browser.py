"""The user's side of the OAuth 2.0 flow in the HTTP tests: a connector at the fake provider,
`authorize`, consent at the provider, and the callback."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from gateway.settings import Settings
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script
from tests.gateway.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider

PUBLIC_URL: Final = "http://gateway.test"
REDIRECT_URI: Final = PUBLIC_URL + "/api/v1/oauth/callback"
JSON: Final = {"Accept": "application/json"}

# The auth script checks the new token against the provider's API, which echoes it back.
AUTH_SCRIPT: Final = """
httprequest.addHeader('Authorization', 'Bearer ' + metadata.account.accesstoken);
var answer = httprequest.get('{api}/api/me');
DOMO.log('auth check: ' + answer);
if (httprequest.getStatusCode() == 200) {{ auth.authenticationSuccess(); }}
else {{ auth.authenticationFailed('The provider refused the token.'); }}
"""


def oauth_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    """One worker, loopback reachable, and a fixed public URL (the provider compares strings)."""
    return Settings(
        data_dir=tmp_path / "data",
        workers=1,
        egress_allow_private=True,
        public_url=PUBLIC_URL,
        database_url=database_url,
    )


async def create_oauth_connector(
    client: Client,
    caller: Caller,
    provider: FakeProvider,
    *,
    key: str = "crm",
    auth_script: str = AUTH_SCRIPT,
    process_script: str | None = None,
) -> dict[str, Any]:
    """An OAuth 2.0 connector whose client is registered at the fake provider."""
    connector = await create_connector(
        client,
        caller,
        key=key,
        name=f"CRM {key}",
        auth={
            "method": "oauth2",
            "authorization_url": f"{provider.url}/authorize",
            "token_url": provider.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["read", "write"],
            "extra_params": {"audience": "crm-api"},
        },
        allowed_hosts=[provider.url.removeprefix("http://")],
        reports=["Me"],
    )
    guid = connector["guid"]
    await put_script(client, caller, guid, "auth", auth_script.format(api=provider.url))
    if process_script is not None:
        await put_script(client, caller, guid, "process", process_script.format(api=provider.url))
    return connector


async def authorize(client: Client, caller: Caller, key: str = "crm", **query: str) -> str:
    """`GET /api/v1/oauth/{key}/authorize`; the provider URL it redirects to."""
    response = await client.get(
        f"/api/v1/oauth/{key}/authorize",
        headers=caller.headers,
        params=query,
        allow_redirects=False,
    )
    assert response.status == HTTPStatus.FOUND, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


async def consent(location: str) -> str:
    """The user agrees at the provider; the callback path and query it sends the browser to."""
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(location, allow_redirects=False) as response,
    ):
        assert response.status == HTTPStatus.FOUND, await response.text()
        back = URL(response.headers["Location"])
    assert str(back.with_query(None)) == REDIRECT_URI
    return back.raw_path_qs


async def connect(client: Client, caller: Caller, key: str = "crm", **query: str) -> dict[str, Any]:
    """The whole flow, answered in JSON: `{"account_id", "status", "reauthorised"}`."""
    callback = await consent(await authorize(client, caller, key, **query))
    response = await client.get(callback, headers=JSON)
    assert response.status in (HTTPStatus.OK, HTTPStatus.CREATED), await response.text()
    body: dict[str, Any] = await response.json()
    return body


class Recorder:
    """Keeps the status, headers and body of every response the app gives (S1 scans)."""

    def __init__(self) -> None:
        self.responses: list[str] = []

    def middleware(self) -> Any:
        """The middleware to put first (outermost) on the app."""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            body = response.body if isinstance(response, web.Response) else b""
            shown = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
            self.responses.append(f"{response.status} {dict(response.headers)} {shown}")
            return response

        return record

    def text(self) -> str:
        """Everything recorded, as one string."""
        return "\n".join(self.responses)
