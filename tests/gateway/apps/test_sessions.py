"""App sessions: listed and revoked by their user, and dead with their user, role change
aside, their token, instance and app (THREATS I5)."""

from __future__ import annotations

import json
from http import HTTPStatus

import structlog
from aiohttp import ClientSession
from yarl import URL

from gateway.identity.principal import Role
from gateway.keys import APP_SESSIONS, IDENTITY
from gateway.store.tables import utcnow
from tests.gateway.apps.browser import origin, place_instance, session_of, sign_in
from tests.gateway.callers import Caller, Client, problem


async def _status(browser: ClientSession, client: Client, iid: str) -> int:
    """What the instance's page answers the browser now."""
    return (await browser.get(origin(client, iid) + "/app.js")).status


def _sessions_path(app_id: str, iid: str) -> str:
    return f"/api/v1/apps/{app_id}/instances/{iid}/sessions"


async def test_sessions_are_listed_to_their_user_and_revoked_one_by_one(
    client: Client, owner: Caller, colleague: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    async with ClientSession(connector=browser.connector, connector_owner=False) as laptop:
        await sign_in(laptop, client, owner, iid)
    listed = await client.get(_sessions_path(app_id, iid) + "?limit=1", headers=owner.headers)
    page = await listed.json()
    first = page["items"][0]
    rest = await client.get(
        _sessions_path(app_id, iid) + f"?cursor={page['next_cursor']}", headers=owner.headers
    )
    second = (await rest.json())["items"][0]
    assert first["id"] < second["id"]
    assert set(first) == {"id", "created_at", "expires_at"}  # never the secret
    theirs = await client.get(_sessions_path(app_id, iid), headers=colleague.headers)
    assert await theirs.json() == {"items": [], "next_cursor": None}
    # A colleague cannot end the owner's session.
    not_theirs = f"{_sessions_path(app_id, iid)}/{first['id']}"
    await problem(
        await client.delete(not_theirs, headers=colleague.headers),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    assert await _status(browser, client, iid) == HTTPStatus.OK
    revoked = await client.delete(not_theirs, headers=owner.headers)
    assert revoked.status == HTTPStatus.NO_CONTENT
    assert await _status(browser, client, iid) == HTTPStatus.UNAUTHORIZED
    left = await client.get(_sessions_path(app_id, iid), headers=owner.headers)
    assert [item["id"] for item in (await left.json())["items"]] == [second["id"]]
    await problem(
        await client.delete(not_theirs, headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found"
    )


async def test_revoking_all_ends_every_session_of_the_caller_there(
    client: Client, owner: Caller, colleague: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    async with ClientSession(connector=browser.connector, connector_owner=False) as other:
        await sign_in(other, client, colleague, iid)
        response = await client.delete(_sessions_path(app_id, iid), headers=owner.headers)
        assert response.status == HTTPStatus.NO_CONTENT
        assert await _status(browser, client, iid) == HTTPStatus.UNAUTHORIZED
        assert await _status(other, client, iid) == HTTPStatus.OK  # the colleague's stays


async def test_another_customer_sees_no_sessions_and_ends_none(
    client: Client, owner: Caller, outsider: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    for response in (
        await client.get(_sessions_path(app_id, iid), headers=outsider.headers),
        await client.delete(_sessions_path(app_id, iid), headers=outsider.headers),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    assert await _status(browser, client, iid) == HTTPStatus.OK


async def test_a_session_dies_with_the_token_that_opened_it(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    identity = client.app[IDENTITY]
    user = await identity.get_user(owner.customer_id, owner.user_id)
    info, token = await identity.issue_token(user, "laptop")
    laptop = Caller(owner.user_id, owner.customer_id, token)
    await sign_in(browser, client, laptop, iid)
    await identity.revoke_token(user, info.id)
    assert await _status(browser, client, iid) == HTTPStatus.UNAUTHORIZED
    listed = await client.get(_sessions_path(app_id, iid), headers=owner.headers)
    assert (await listed.json())["items"] == []


async def test_a_session_dies_with_its_user(
    client: Client, owner: Caller, colleague: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, colleague, iid)
    identity = client.app[IDENTITY]
    await identity.delete_user(await identity.get_user(colleague.customer_id, colleague.user_id))
    assert await _status(browser, client, iid) == HTTPStatus.UNAUTHORIZED


async def test_a_session_acts_with_its_users_current_role(
    client: Client, owner: Caller, colleague: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, colleague, iid)
    identity = client.app[IDENTITY]
    user = await identity.get_user(colleague.customer_id, colleague.user_id)
    await identity.update_user(user, role=Role.ADMIN)
    sid = session_of(browser, client, iid)
    session = await client.app[APP_SESSIONS].resolve(iid, sid)
    assert session is not None
    assert session.principal.role is Role.ADMIN


async def test_a_session_dies_with_its_instance_and_app(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    deleted = await client.delete(f"/api/v1/apps/{app_id}", headers=owner.headers)
    assert deleted.status == HTTPStatus.NO_CONTENT
    assert await _status(browser, client, iid) == HTTPStatus.UNAUTHORIZED


async def test_expired_sessions_and_codes_are_swept(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    _, iid = await place_instance(client, owner)
    await sign_in(browser, client, owner, iid)
    await client.get(f"/apps/{iid}/", headers=owner.headers, allow_redirects=False)  # a code
    sessions = client.app[APP_SESSIONS]
    assert await sessions.purge_expired() == 0
    later = utcnow() + sessions.ttl
    sessions.clock = lambda: later
    assert await sessions.purge_expired() == 2


async def test_no_link_code_or_session_id_reaches_a_log_line(
    client: Client, owner: Caller, browser: ClientSession
) -> None:
    app_id, iid = await place_instance(client, owner)
    with structlog.testing.capture_logs() as captured:
        launched = await client.post(
            f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=owner.headers
        )
        link = URL((await launched.json())["url"])
        first = await client.get(link.path_qs, allow_redirects=False)
        code = URL(first.headers["Location"]).query["code"]
        await browser.get(first.headers["Location"])
        sid = session_of(browser, client, iid)
        await browser.get(origin(client, iid) + "/", params={"ryuu_sid": sid})
    lines = json.dumps(captured, default=str)
    assert '"app_session_opened"' in lines
    for secret in (link.query["link"], code, sid):
        assert secret not in lines
