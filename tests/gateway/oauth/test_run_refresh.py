"""Runs with OAuth 2.0 accounts: refresh before the run, one refresh and one replay after a
401, `needs_reauth`, outages, the refresh endpoint (SPEC 6; THREATS O4, S1).

The app is the real one on SQLite; the provider is the fake authorization server, which is
also the API the script calls (`/api/me` accepts only a family's current access token and
echoes it back).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import pytest
import structlog
from sqlalchemy import select, update

from gateway.accounts.tables import accounts
from gateway.connectors.tables import runs
from gateway.keys import ENGINE, RUNS, VAULT
from gateway.settings import Settings
from gateway.store import utcnow
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.oauth.browser import Recorder, connect, create_oauth_connector, oauth_settings
from tests.gateway.oauth.fake_provider import CLIENT_SECRET, FakeProvider, Family, Outage

# Two calls to the API (the token in a header, then in the query), everything logged.
PROCESS: Final = """
httprequest.addHeader('Authorization', 'Bearer ' + metadata.account.accesstoken);
var first = httprequest.get('{api}/api/me');
DOMO.log(httprequest.getStatusCode() + ' ' + first);
httprequest.clearHeaders();
httprequest.addParameter('access_token', metadata.account.accesstoken);
var second = httprequest.get('{api}/api/me');
DOMO.log(httprequest.getStatusCode() + ' ' + second);
DOMO.log('token ' + metadata.account.accesstoken + ' secret ' + metadata.account.clientSecret
  + ' refresh ' + metadata.account.refreshtoken + ' client ' + metadata.account.clientKey);
datagrid.addColumn('token', datagrid.DATA_TYPE_STRING);
datagrid.addCell(metadata.account.accesstoken);
datagrid.endRow();
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The app with the fixed public URL, on SQLite."""
    return oauth_settings(tmp_path)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """The fake provider, its tokens valid for an hour (well beyond the refresh margin)."""
    server = FakeProvider(expires_in=3600)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def crm(client: Client, owner: Caller, provider: FakeProvider) -> dict[str, Any]:
    """The OAuth 2.0 connector `crm` with the two-call process script."""
    return await create_oauth_connector(client, owner, provider, process_script=PROCESS)


@pytest.fixture
async def account_id(client: Client, owner: Caller, crm: dict[str, Any]) -> str:
    """`owner`'s account, authorised through the browser flow."""
    created: str = (await connect(client, owner, name="Sales CRM"))["account_id"]
    return created


async def _expire(client: Client, account_id: str) -> None:
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(token_expires_at=utcnow() - timedelta(seconds=1))
        )


async def _run(client: Client, caller: Caller, guid: str, account_id: str) -> Any:
    return await client.post(
        f"/api/v1/connectors/{guid}/runs",
        headers=caller.headers,
        json={"mode": "process", "account_id": account_id, "report": "Me"},
    )


async def _ok_run(client: Client, caller: Caller, guid: str, account_id: str) -> dict[str, Any]:
    response = await _run(client, caller, guid, account_id)
    assert response.status == HTTPStatus.OK, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def _stored(client: Client, account_id: str) -> dict[str, str]:
    async with client.app[ENGINE].connect() as connection:
        row = (await connection.execute(select(accounts).where(accounts.c.id == account_id))).one()
        tokens = await client.app[VAULT].load(connection, row.customer_id, account_id)
    return {"status": row.status, "version": str(row.version), **tokens}


def _family(provider: FakeProvider) -> Family:
    return provider.families[-1]


async def test_an_expired_token_is_refreshed_once_before_the_run(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    family = _family(provider)
    old = family.access_token
    await _expire(client, account_id)
    run = await _ok_run(client, owner, crm["guid"], account_id)
    assert run["status"] == "success", run["error"]
    assert provider.refresh_calls == 1
    # The script ran with the new token, in the header and in the query.
    assert family.access_token != old
    assert provider.api_tokens[-2:] == [family.access_token, family.access_token]
    stored = await _stored(client, account_id)
    assert (stored["accesstoken"], stored["refreshtoken"]) == (
        family.access_token,
        family.refresh_token,
    )
    assert run["logs"] == [
        '200 {"family": 0, "echo": "you sent [redacted]"}',
        '200 {"family": 0, "echo": "you sent [redacted]"}',
        "token [redacted] secret [redacted] refresh undefined client gateway-client",
    ]
    assert run["rows"] == [["[redacted]"]]
    assert [(h["status"], h["url"].split("?")[-1]) for h in run["http"]] == [
        (200, f"{provider.url}/api/me"),
        (200, "access_token=[redacted]"),
    ]
    # A second run uses the fresh token as it is.
    assert (await _ok_run(client, owner, crm["guid"], account_id))["status"] == "success"
    assert provider.refresh_calls == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_oauth_refreshes_total{outcome="refreshed"} 1.0' in metrics


async def test_a_401_mid_run_refreshes_once_and_replays_once(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    family = _family(provider)
    provider.invalidate_access(family)  # the provider revoked the token before its expiry
    stale = (await _stored(client, account_id))["accesstoken"]
    run = await _ok_run(client, owner, crm["guid"], account_id)
    assert run["status"] == "success", run["error"]
    assert provider.refresh_calls == 1
    fresh = family.access_token
    # The 401 request again with the new token; the later request carried it at once.
    assert provider.api_tokens[-3:] == [stale, fresh, fresh]
    assert [h["status"] for h in run["http"]] == [401, 200, 200]
    # The script never holds the new token: the API's echo of it reaches it redacted.
    assert run["logs"][:2] == [
        '200 {"family": 0, "echo": "you sent [redacted]"}',
        '200 {"family": 0, "echo": "you sent [redacted]"}',
    ]
    assert (await _stored(client, account_id))["accesstoken"] == fresh
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        stored_run = (
            await connection.execute(select(runs).where(runs.c.id == run["run_id"]))
        ).one()
    assert fresh not in json.dumps(stored_run.result)
    assert stale not in json.dumps(stored_run.result)
    # The next run starts with the new token: no 401, no refresh.
    again = await _ok_run(client, owner, crm["guid"], account_id)
    assert [h["status"] for h in again["http"]] == [200, 200]
    assert provider.refresh_calls == 1


async def test_a_second_401_in_the_run_stands(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    family = _family(provider)
    provider.invalidate_access(family)
    # The provider issues tokens its API refuses: one refresh, one replay, then 401s stand.
    provider.issue_unusable = True
    run = await _ok_run(client, owner, crm["guid"], account_id)
    assert [h["status"] for h in run["http"]] == [401, 401, 401]
    assert provider.refresh_calls == 1


async def test_o4_invalid_grant_mid_run_and_the_next_run_is_409(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    family = _family(provider)
    provider.invalidate_access(family)
    family.revoked = True  # the user revoked the gateway at the provider
    run = await _ok_run(client, owner, crm["guid"], account_id)
    # The 401 stands; the script decides what it means.
    assert run["logs"][0] == '401 {"error": "invalid_token"}'
    assert [h["status"] for h in run["http"]] == [401, 401]
    assert provider.refresh_calls == 1
    assert (await _stored(client, account_id))["status"] == "needs_reauth"
    body = await problem(
        await _run(client, owner, crm["guid"], account_id),
        HTTPStatus.CONFLICT,
        "account_needs_reauth",
    )
    assert "authorised again" in body["detail"]
    await problem(
        await client.post(f"/api/v1/accounts/{account_id}/refresh", headers=owner.headers),
        HTTPStatus.CONFLICT,
        "account_needs_reauth",
    )
    # No retry loop: the provider was not asked again.
    assert provider.refresh_calls == 1
    # Authorising again brings the account back.
    assert (await connect(client, owner, account_id=account_id))["reauthorised"] is True
    assert (await _ok_run(client, owner, crm["guid"], account_id))["status"] == "success"


async def test_o4_an_expired_token_with_a_revoked_grant_is_409_at_once(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    _family(provider).revoked = True
    await _expire(client, account_id)
    await problem(
        await _run(client, owner, crm["guid"], account_id),
        HTTPStatus.CONFLICT,
        "account_needs_reauth",
    )
    await problem(
        await _run(client, owner, crm["guid"], account_id),
        HTTPStatus.CONFLICT,
        "account_needs_reauth",
    )
    assert provider.refresh_calls == 1
    assert provider.api_tokens == [provider.families[0].access_token]  # the auth check only


async def test_a_provider_outage_is_502_and_keeps_the_tokens(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    before = await _stored(client, account_id)
    await _expire(client, account_id)
    provider.outage = Outage(429, "30")
    body = await problem(
        await _run(client, owner, crm["guid"], account_id),
        HTTPStatus.BAD_GATEWAY,
        "upstream_unavailable",
    )
    assert "could not be refreshed" in body["detail"]
    # During the backoff the provider is not asked; the refresh endpoint says how long.
    response = await client.post(f"/api/v1/accounts/{account_id}/refresh", headers=owner.headers)
    await problem(response, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert 25 <= int(response.headers["Retry-After"]) <= 30
    assert provider.refresh_calls == 1
    after = await _stored(client, account_id)
    assert (after["status"], after["accesstoken"], after["refreshtoken"]) == (
        "valid",
        before["accesstoken"],
        before["refreshtoken"],
    )


async def test_the_refresh_endpoint_is_for_the_owner_and_admins(
    client: Client,
    owner: Caller,
    colleague: Caller,
    admin: Caller,
    outsider: Caller,
    crm: dict[str, Any],
    account_id: str,
    provider: FakeProvider,
) -> None:
    path = f"/api/v1/accounts/{account_id}/refresh"
    family = _family(provider)
    first = family.access_token
    response = await client.post(path, headers=owner.headers)
    assert response.status == HTTPStatus.OK, await response.text()
    account = await response.json()
    assert (account["id"], account["status"]) == (account_id, "valid")
    assert account["secret_fields"] == ["accesstoken", "refreshtoken"]
    assert provider.refresh_calls == 1
    assert family.access_token != first
    assert (await _stored(client, account_id))["accesstoken"] == family.access_token
    await problem(
        await client.post(path, headers=colleague.headers),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    await problem(
        await client.post(path, headers=outsider.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    assert (await client.post(path, headers=admin.headers)).status == HTTPStatus.OK
    assert provider.refresh_calls == 2
    assert provider.replays == 0


async def test_s1_tokens_and_the_client_secret_never_leak(
    client: Client,
    owner: Caller,
    crm: dict[str, Any],
    provider: FakeProvider,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        account_id = (await connect(client, owner))["account_id"]
        await _expire(client, account_id)
        await _ok_run(client, owner, crm["guid"], account_id)  # refreshed before the run
        provider.invalidate_access(_family(provider))
        run = await _ok_run(client, owner, crm["guid"], account_id)  # 401, refresh, replay
        await client.post(f"/api/v1/accounts/{account_id}/refresh", headers=owner.headers)
        await client.get(f"/api/v1/runs/{run['run_id']}", headers=owner.headers)
        await client.get("/api/v1/runs", headers=owner.headers)
        await client.get(f"/api/v1/accounts/{account_id}", headers=owner.headers)
        await client.get(f"/api/v1/connectors/{crm['guid']}", headers=owner.headers)
        await connect(client, owner, account_id=account_id)
        await client.get("/metrics")
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        stored_runs = [tuple(row) for row in await connection.execute(select(runs))]
    assert len(stored_runs) == 4  # two auth checks, two process runs
    captured = "\n".join(
        [recorder.text(), repr(stored_runs), repr(events), caplog.text]
        + [repr(record.__dict__) for record in caplog.records]
    )
    assert {"oauth_token_refreshed", "oauth_request_replayed", "oauth_account_authorised"} <= {
        e["event"] for e in events
    }
    secrets = [CLIENT_SECRET]
    for family in provider.families:
        secrets += [family.access_token, family.refresh_token, *family.used]
    secrets += [t for t in provider.api_tokens if t]
    assert len(secrets) >= 8
    assert [s for s in secrets if s in captured] == []


async def test_o1_200_concurrent_runs_on_an_expired_account_refresh_once(
    client: Client, owner: Caller, crm: dict[str, Any], account_id: str, provider: FakeProvider
) -> None:
    await _expire(client, account_id)
    provider.delay = 0.2  # the refresh is still in flight while the other runs arrive
    responses = await asyncio.gather(
        *(_run(client, owner, crm["guid"], account_id) for _ in range(200))
    )
    statuses = [response.status for response in responses]
    assert statuses == [HTTPStatus.OK] * 200
    runs = [await response.json() for response in responses]
    assert {run["status"] for run in runs} == {"success"}
    assert provider.refresh_calls == 1
    assert provider.replays == 0
    assert not _family(provider).revoked
