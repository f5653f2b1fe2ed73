"""App instances on their own origins, driven by a real HTTP client with cookies (THREATS
I5, I7, I8): the launch and bearer flows, the exchange, the served pages and files, and
what the instance origin refuses."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from pytest_aiohttp import AiohttpClient
from yarl import URL

from gateway.app import create_app
from gateway.identity.principal import Role
from gateway.keys import APP_INSTANCE, APP_SESSIONS, PRINCIPAL
from gateway.settings import Settings
from gateway.store.tables import utcnow
from tests.gateway.apps.browser import (
    exchange_url,
    origin,
    place_instance,
    sign_in,
)
from tests.gateway.callers import Caller, Client, make_caller, problem
from tests.openapi_check import Conformance, watch

WHOAMI = "/domo/test/whoami"


async def whoami(request: web.Request) -> web.Response:
    """A test-only `/domo/...` handler: who the gateway says is calling, from which instance."""
    principal = request[PRINCIPAL]
    return web.json_response(
        {
            "user_id": principal.user_id,
            "role": principal.role.value,
            "instance": request.get(APP_INSTANCE),
            "principal_instance": principal.app_instance_id,
        }
    )


@pytest.fixture
def app(settings: Settings, conformance: Conformance) -> web.Application:
    """The real application plus the test-only `/domo/` route."""
    application = watch(create_app(settings), conformance)
    application.router.add_route("*", WHOAMI, whoami)
    return application


def _later(client: Client, delta: timedelta) -> None:
    moment = utcnow() + delta
    client.app[APP_SESSIONS].clock = lambda: moment


async def test_the_bearer_flow_ends_on_the_instance_with_a_session(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    location = URL(await exchange_url(client, owner, iid))
    assert str(location.origin()) == origin(client, iid)
    assert location.path == "/__gateway/session"
    exchanged = await browser.get(location, allow_redirects=False)
    assert exchanged.status == HTTPStatus.FOUND
    assert exchanged.headers["Location"] == "/"
    assert exchanged.headers["Cache-Control"] == "no-store"
    page = await browser.get(origin(client, iid) + "/")
    assert page.status == HTTPStatus.OK
    assert b"board" in await page.read()
    me = await browser.get(origin(client, iid) + WHOAMI)
    assert await me.json() == {
        "user_id": owner.user_id,
        "role": "member",
        "instance": iid,
        "principal_instance": iid,
    }


async def test_the_session_cookie_is_host_only_httponly_and_lax(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    exchanged = await browser.get(await exchange_url(client, owner, iid), allow_redirects=False)
    (header,) = exchanged.headers.getall("Set-Cookie")
    attributes = {part.split("=")[0].strip().lower() for part in header.split(";")[1:]}
    assert header.startswith("ryuu_sid=rs_")
    assert attributes == {"httponly", "samesite", "path", "max-age"}  # no Domain, no Secure
    assert "SameSite=Lax" in header
    assert "Path=/;" in header + ";"
    assert f"Max-Age={8 * 3600}" in header
    # Another instance's origin (same parent domain) never gets it.
    _, other = await place_instance(client, owner)
    assert not browser.cookie_jar.filter_cookies(URL(origin(client, other)))


async def test_the_launch_link_opens_the_instance_once_without_a_header(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    launched = await client.post(
        f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=owner.headers
    )
    assert launched.status == HTTPStatus.OK
    assert launched.headers["Cache-Control"] == "no-store"
    url = (await launched.json())["url"]
    assert url.startswith(f"http://127.0.0.1:{client.port}/apps/{iid}/?link=")
    page = await browser.get(url)
    assert page.status == HTTPStatus.OK
    assert str(page.url) == origin(client, iid) + "/"
    assert b"window.__RYUU_SID__" in await page.read()
    again = await client.get(URL(url).path_qs, allow_redirects=False)
    await problem(again, HTTPStatus.NOT_FOUND, "not_found")


async def test_a_launch_link_expires_after_60_seconds(client: Client, owner: Caller) -> None:
    app_id, iid = await place_instance(client, owner)
    launched = await client.post(
        f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=owner.headers
    )
    url = URL((await launched.json())["url"]).path_qs
    _later(client, timedelta(seconds=61))
    await problem(await client.get(url, allow_redirects=False), HTTPStatus.NOT_FOUND, "not_found")


async def test_a_launch_link_of_one_instance_opens_no_other(client: Client, owner: Caller) -> None:
    app_id, iid = await place_instance(client, owner)
    _, other = await place_instance(client, owner)
    launched = await client.post(
        f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=owner.headers
    )
    link = URL((await launched.json())["url"]).query["link"]
    response = await client.get(f"/apps/{other}/", params={"link": link}, allow_redirects=False)
    await problem(response, HTTPStatus.NOT_FOUND, "not_found")


async def test_a_code_is_used_once(client: Client, owner: Caller, browser: ClientSession) -> None:
    _, iid = await place_instance(client, owner)
    location = await exchange_url(client, owner, iid)
    assert (await browser.get(location, allow_redirects=False)).status == HTTPStatus.FOUND
    async with ClientSession(connector=browser.connector, connector_owner=False) as thief:
        again = await thief.get(location, allow_redirects=False)
    assert again.status == HTTPStatus.UNAUTHORIZED
    assert "Set-Cookie" not in again.headers
    assert "open the app again from the gateway" in (await again.text()).lower()


async def test_an_expired_code_opens_nothing(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    location = await exchange_url(client, owner, iid)
    _later(client, timedelta(seconds=61))
    response = await browser.get(location, allow_redirects=False)
    assert response.status == HTTPStatus.UNAUTHORIZED
    assert not browser.cookie_jar.filter_cookies(URL(origin(client, iid)))


async def test_a_code_for_one_instance_opens_no_other(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    _, other = await place_instance(client, owner)
    code = URL(await exchange_url(client, owner, iid)).query["code"]
    wrong = f"{origin(client, other)}/__gateway/session?code={code}"
    assert (await browser.get(wrong, allow_redirects=False)).status == HTTPStatus.UNAUTHORIZED


async def test_a_session_expires(client: Client, owner: Caller, browser: ClientSession) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    _later(client, timedelta(hours=8, seconds=1))
    page = await browser.get(origin(client, iid) + "/")
    assert page.status == HTTPStatus.UNAUTHORIZED
    await problem(
        await browser.get(origin(client, iid) + WHOAMI), HTTPStatus.UNAUTHORIZED, "unauthenticated"
    )


async def test_the_index_carries_the_session_under_a_nonce_policy(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    sid = await sign_in(browser, client, owner, iid)
    policies = []
    for path in ("/", "/index.html"):
        page = await browser.get(origin(client, iid) + path)
        body = await page.text()
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        policy = page.headers["Content-Security-Policy"]
        policies.append(policy)
        (nonce,) = re.findall(r"'nonce-([^']+)'", policy)
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert "object-src 'none'" in policy
        injected = f'<head><script nonce="{nonce}">window.__RYUU_SID__ = "{sid}";</script>'
        assert injected in body
        assert f'<script nonce="{nonce}" src="app.js">' in body
    assert policies[0] != policies[1]  # a fresh nonce each time


async def test_pages_without_a_head_and_folder_indexes_get_the_session(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    sid = await sign_in(browser, client, owner, iid)
    bare = await (await browser.get(origin(client, iid) + "/bare.html")).text()
    assert bare.startswith("<script nonce=")
    assert f'"{sid}"' in bare
    assert bare.endswith("<p>no head here</p>")
    docs = await (await browser.get(origin(client, iid) + "/docs/")).text()
    assert docs.lower().startswith("<!doctype html><script nonce=")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/data.bin", "application/octet-stream"),
    ],
)
async def test_files_are_served_with_their_types_and_revalidated(
    client: Client, owner: Caller, browser: ClientSession, path: str, content_type: str
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    response = await browser.get(origin(client, iid) + path)
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-cache"
    etag = response.headers["ETag"]
    again = await browser.get(origin(client, iid) + path, headers={"If-None-Match": etag})
    assert again.status == HTTPStatus.NOT_MODIFIED


async def test_a_missing_file_is_a_404_page(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    response = await browser.get(origin(client, iid) + "/nothing.js")
    assert response.status == HTTPStatus.NOT_FOUND
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


async def test_without_a_session_pages_say_to_open_the_app_and_domo_answers_json(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    page = await browser.get(origin(client, iid) + "/", allow_redirects=False)
    assert page.status == HTTPStatus.UNAUTHORIZED
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "open the app again from the gateway" in (await page.text()).lower()
    assert b"board" not in await page.read()
    for method in ("GET", "POST"):
        response = await browser.request(
            method, origin(client, iid) + WHOAMI, allow_redirects=False
        )
        await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")


async def test_a_session_of_one_instance_is_refused_on_another(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    _, other = await place_instance(client, owner)
    sid = await sign_in(browser, client, owner, iid)
    header = {"X-DOMO-Ryuu-Session": sid}
    await problem(
        await browser.get(origin(client, other) + WHOAMI, headers=header),
        HTTPStatus.UNAUTHORIZED,
        "unauthenticated",
    )
    page = await browser.get(origin(client, other) + "/app.js", params={"ryuu_sid": sid})
    assert page.status == HTTPStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/metrics", "/openapi.yaml", "/healthz", "/api/v1/apps", "/apps/x/"]
)
async def test_nothing_of_the_gateway_is_reachable_on_an_instance_origin(
    client: Client, owner: Caller, browser: ClientSession, path: str
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    with_session = await browser.get(origin(client, iid) + path, headers=owner.headers)
    assert with_session.status == HTTPStatus.NOT_FOUND
    assert with_session.headers["Content-Type"] == "text/html; charset=utf-8"
    async with ClientSession(connector=browser.connector, connector_owner=False) as stranger:
        without = await stranger.get(origin(client, iid) + path, headers=owner.headers)
    assert without.status == HTTPStatus.UNAUTHORIZED
    # A name in the apps domain that is no instance gets nothing of the gateway either.
    unknown = await browser.get(f"http://nothing.apps.localhost:{client.port}{path}")
    assert unknown.status == HTTPStatus.UNAUTHORIZED


async def test_the_gateway_origin_never_serves_app_files(client: Client, owner: Caller) -> None:
    _, iid = await place_instance(client, owner)
    for path in ("/index.html", "/app.js", f"/apps/{iid}/app.js"):
        response = await client.get(path, headers=owner.headers)
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")


async def test_a_state_change_from_a_foreign_origin_is_refused(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    _, other = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    url = origin(client, iid) + WHOAMI
    for foreign in (origin(client, other), "https://evil.example", "null"):
        body = await problem(
            await browser.post(url, headers={"Origin": foreign}),
            HTTPStatus.FORBIDDEN,
            "forbidden",
        )
        assert "only pages of this app instance" in body["detail"]
    same_site = {"Origin": origin(client, iid), "Sec-Fetch-Site": "same-site"}
    await problem(await browser.post(url, headers=same_site), HTTPStatus.FORBIDDEN, "forbidden")
    # The cookie alone, with neither Origin nor Sec-Fetch-Site, changes nothing.
    await problem(await browser.post(url), HTTPStatus.FORBIDDEN, "forbidden")
    # Reading is not a change: a GET passes without Origin.
    assert (await browser.get(url)).status == HTTPStatus.OK


async def test_a_same_origin_state_change_is_accepted(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    sid = await sign_in(browser, client, owner, iid)
    url = origin(client, iid) + WHOAMI
    own = {"Origin": origin(client, iid).upper(), "Sec-Fetch-Site": "same-origin"}
    response = await browser.post(url, headers=own, json={})
    assert response.status == HTTPStatus.OK
    assert (await response.json())["instance"] == iid
    # The header form (ryuu.js) needs no Origin: no other page can set that header.
    async with ClientSession(connector=browser.connector, connector_owner=False) as script:
        response = await script.post(url, headers={"X-DOMO-Ryuu-Session": sid})
    assert (await response.json())["user_id"] == owner.user_id


async def test_the_session_header_and_query_parameter(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    sid = await sign_in(browser, client, owner, iid)
    async with ClientSession(connector=browser.connector, connector_owner=False) as bare:
        by_header = await bare.get(
            origin(client, iid) + WHOAMI, headers={"X-DOMO-Ryuu-Session": sid}
        )
        assert (await by_header.json())["instance"] == iid
        by_query = await bare.get(origin(client, iid) + "/app.js", params={"ryuu_sid": sid})
        assert by_query.status == HTTPStatus.OK
        assert await by_query.read() == b"console.log('board');"
        page = await bare.get(origin(client, iid) + "/", params={"ryuu_sid": sid})
        assert f'"{sid}"' in await page.text()
        # `?ryuu_sid=` is for files only: the endpoints take the cookie or the header.
        await problem(
            await bare.get(origin(client, iid) + WHOAMI, params={"ryuu_sid": sid}),
            HTTPStatus.UNAUTHORIZED,
            "unauthenticated",
        )
        # A presented id that is bad is not made up for by anything else.
        await problem(
            await browser.get(
                origin(client, iid) + WHOAMI, headers={"X-DOMO-Ryuu-Session": "rs_x"}
            ),
            HTTPStatus.UNAUTHORIZED,
            "unauthenticated",
        )


async def test_an_authorization_header_is_ignored_on_an_instance_origin(
    client: Client, owner: Caller, colleague: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    url = origin(client, iid) + WHOAMI
    for header in (colleague.headers, {"Authorization": "Bearer gw_not-a-valid-token-at-all"}):
        response = await browser.get(url, headers=header)
        assert response.status == HTTPStatus.OK
        assert (await response.json())["user_id"] == owner.user_id


async def test_opening_needs_a_caller_and_the_callers_customers_instance(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    app_id, iid = await place_instance(client, owner)
    await problem(
        await client.get(f"/apps/{iid}/", allow_redirects=False),
        HTTPStatus.UNAUTHORIZED,
        "unauthenticated",
    )
    for response in (
        await client.get(f"/apps/{iid}/", headers=outsider.headers, allow_redirects=False),
        await client.post(
            f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=outsider.headers
        ),
        await client.get("/apps/nothing/", headers=owner.headers, allow_redirects=False),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")


async def test_on_https_the_cookie_is_secure_and_host_prefixed(
    listener: socket.socket,  # first: it is closed after the server that serves on it
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    browser: ClientSession,
) -> None:
    port = listener.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path / "data",
        workers=1,
        port=port,
        apps_origin=f"https://{{instance}}.apps.localhost:{port}",
    )
    client = await aiohttp_client(
        create_app(settings), server_kwargs={"socket_factory": lambda *_: listener}
    )
    owner = await make_caller(client, "acme", "olga@acme.test", Role.MEMBER)
    _, iid = await place_instance(client, owner)
    location = URL(await exchange_url(client, owner, iid))
    assert location.scheme == "https"
    # The test server speaks plain HTTP; the Host header is what names the origin.
    exchanged = await browser.get(location.with_scheme("http"), allow_redirects=False)
    cookie = exchanged.headers["Set-Cookie"]
    assert cookie.startswith("__Host-ryuu_sid=rs_")
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}
    sid = cookie.split(";")[0].split("=", 1)[1]
    page = await browser.get(
        location.with_scheme("http").with_path("/app.js"),
        headers={"Cookie": f"__Host-ryuu_sid={sid}"},
    )
    assert page.status == HTTPStatus.OK
