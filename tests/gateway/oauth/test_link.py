"""The one-time authorize link for browsers, which send no bearer header (SPEC 4.3; O3).

The app is the real one on SQLite and PostgreSQL; the provider is the fake on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from yarl import URL

from gateway.keys import ENGINE
from gateway.oauth.tables import oauth_links, oauth_states
from gateway.settings import Settings
from gateway.store import utcnow
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import create_connector
from tests.gateway.oauth.browser import (
    JSON,
    PUBLIC_URL,
    consent,
    create_oauth_connector,
    oauth_settings,
)
from tests.gateway.oauth.fake_provider import FakeProvider

USED = "the authorisation link is unknown, expired or used already: ask for a new one"


@pytest.fixture
def settings(tmp_path: Path, migrated_db_url: str) -> Settings:
    """The app on this test's backend, with the fixed public URL."""
    return oauth_settings(tmp_path, migrated_db_url)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """The fake provider, its tokens valid for an hour."""
    server = FakeProvider(expires_in=3600)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def crm(client: Client, owner: Caller, provider: FakeProvider) -> dict[str, Any]:
    """The OAuth 2.0 connector `crm` of `owner`'s customer."""
    return await create_oauth_connector(client, owner, provider)


async def _link(client: Client, caller: Caller, key: str = "crm", **body: Any) -> str:
    response = await client.post(
        f"/api/v1/oauth/{key}/authorize", headers=caller.headers, json=body
    )
    assert response.status == HTTPStatus.OK, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    url: str = (await response.json())["url"]
    return url


async def _open(client: Client, url: str) -> Any:
    """What a browser does with the link: no header of ours, redirects not followed."""
    return await client.get(URL(url).raw_path_qs, allow_redirects=False)


async def _connect(client: Client, caller: Caller, **body: Any) -> Any:
    """The whole flow from a link: open it, consent, and the callback (JSON)."""
    opened = await _open(client, await _link(client, caller, **body))
    assert opened.status == HTTPStatus.FOUND, await opened.text()
    return await client.get(await consent(opened.headers["Location"]), headers=JSON)


async def _links(client: Client) -> list[Any]:
    async with client.app[ENGINE].connect() as connection:
        return list((await connection.execute(select(oauth_links))).all())


async def test_a_browser_opens_the_link_without_a_token_and_connects_the_users_account(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    url = await _link(client, owner, name="Sales CRM")
    secret = URL(url).query["link"]
    assert str(URL(url).with_query(None)) == f"{PUBLIC_URL}/api/v1/oauth/crm/authorize"
    assert len(secret) >= 43
    # Only the digest of the link's secret is stored, bound to the user, for 60 s.
    [row] = await _links(client)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(tuple(row))
    assert (row.user_id, row.connector_key, row.account_name, row.account_id) == (
        owner.user_id,
        "crm",
        "Sales CRM",
        None,
    )
    assert timedelta(seconds=50) < row.expires_at - utcnow() <= timedelta(seconds=60)

    opened = await _open(client, url)
    assert opened.status == HTTPStatus.FOUND, await opened.text()
    assert opened.headers["Cache-Control"] == "no-store"
    location = URL(opened.headers["Location"])
    assert {"state", "code_challenge"} <= set(location.query)
    assert location.query["code_challenge_method"] == "S256"
    async with client.app[ENGINE].connect() as connection:
        pending = (await connection.execute(select(oauth_states))).one()
    assert (pending.user_id, pending.account_name) == (owner.user_id, "Sales CRM")
    assert await _links(client) == []

    done = await client.get(await consent(str(location)), headers=JSON)
    assert done.status == HTTPStatus.CREATED, await done.text()
    account = await (await client.get(done.headers["Location"], headers=owner.headers)).json()
    assert (account["owner_id"], account["name"]) == (owner.user_id, "Sales CRM")


async def test_a_link_is_used_once(client: Client, owner: Caller, crm: dict[str, Any]) -> None:
    url = await _link(client, owner)
    assert (await _open(client, url)).status == HTTPStatus.FOUND
    body = await problem(await _open(client, url), HTTPStatus.NOT_FOUND, "not_found")
    assert body["detail"] == USED


async def test_expired_forged_and_misdirected_links_are_refused(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    url = await _link(client, owner)
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(oauth_links).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await problem(await _open(client, url), HTTPStatus.NOT_FOUND, "not_found")
    assert expired["detail"] == (
        "the authorisation link expired (a link is valid 60 s): ask for a new one"
    )
    forged = URL(url).update_query(link="x" * 43)
    body = await problem(await _open(client, str(forged)), HTTPStatus.NOT_FOUND, "not_found")
    assert body["detail"] == USED
    # A link opens the authorisation it was issued for, not another connector's.
    await create_oauth_connector(client, owner, provider, key="othercrm")
    other = URL(await _link(client, owner)).query["link"]
    misdirected = f"/api/v1/oauth/othercrm/authorize?link={other}"
    await problem(await _open(client, misdirected), HTTPStatus.NOT_FOUND, "not_found")
    async with client.app[ENGINE].connect() as connection:
        assert (await connection.execute(select(oauth_states))).all() == []


async def test_the_link_re_authorises_the_named_account(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    account_id = (await (await _connect(client, owner)).json())["account_id"]
    again = await _connect(client, owner, account_id=account_id)
    assert again.status == HTTPStatus.OK, await again.text()
    assert await again.json() == {"account_id": account_id, "status": "valid", "reauthorised": True}


async def test_a_link_is_refused_what_authorize_would_refuse(
    client: Client,
    owner: Caller,
    colleague: Caller,
    crm: dict[str, Any],
    provider: FakeProvider,
) -> None:
    await problem(
        await client.post("/api/v1/oauth/crm/authorize", json={}),
        HTTPStatus.UNAUTHORIZED,
        "unauthenticated",
    )
    await problem(
        await client.post("/api/v1/oauth/nope/authorize", headers=owner.headers, json={}),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    await create_connector(client, owner, key="basiccrm")
    await problem(
        await client.post("/api/v1/oauth/basiccrm/authorize", headers=owner.headers),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    await problem(
        await client.post("/api/v1/oauth/crm/authorize", headers=owner.headers, json={"name": ""}),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    owners = await _connect(client, owner)
    await problem(
        await client.post(
            "/api/v1/oauth/crm/authorize",
            headers=colleague.headers,
            json={"account_id": (await owners.json())["account_id"]},
        ),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    assert await _links(client) == []
