"""The documentation's Salesforce-style action, unmodified, through the process endpoint, with
an OAuth 2.0 account (refreshed during the call when its token expired)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy import update

from gateway.accounts.tables import accounts
from gateway.keys import ENGINE
from gateway.settings import Settings
from gateway.store import utcnow
from tests.domo_fakes import DomoHosts
from tests.gateway.actions.conftest import process, run_record
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script, script
from tests.gateway.oauth.browser import AUTH_SCRIPT, connect, oauth_settings
from tests.gateway.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider

PARAMETERS: Final = {"Opportunity ID": "006Dn00000A1b2C", "Stage Name": "Closed Won"}


@pytest.fixture
def settings(tmp_path: Path, domo_hosts: DomoHosts) -> Settings:
    """The OAuth test app, reaching na73.salesforce.com's local fake."""
    base = oauth_settings(tmp_path)
    return base.model_copy(
        update={"egress_connect_to": domo_hosts.connect_to, "egress_ca_file": domo_hosts.ca_file}
    )


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """The fake authorization server, its tokens valid an hour."""
    server = FakeProvider(expires_in=3600)
    await server.start()
    yield server
    await server.close()


async def _salesforce_action(client: Client, owner: Caller, provider: FakeProvider) -> str:
    created = await create_connector(
        client,
        owner,
        kind="action",
        key="salesforce",
        name="Opportunity stage",
        auth={
            "method": "oauth2",
            "authorization_url": f"{provider.url}/authorize",
            "token_url": provider.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["read", "write"],
        },
        allowed_hosts=[provider.url.removeprefix("http://"), "na73.salesforce.com"],
        parameters=[
            {"name": "Opportunity ID", "type": "string", "required": True},
            {"name": "Stage Name", "type": "string", "required": True},
        ],
    )
    guid: str = created["guid"]
    await put_script(client, owner, guid, "auth", AUTH_SCRIPT.format(api=provider.url))
    await put_script(client, owner, guid, "process", script("salesforce_stage.js"))
    return guid


async def test_the_salesforce_action_end_to_end(
    client: Client, owner: Caller, provider: FakeProvider, domo_hosts: DomoHosts
) -> None:
    guid = await _salesforce_action(client, owner, provider)
    account_id = (await connect(client, owner, "salesforce", name="Salesforce"))["account_id"]
    token = provider.families[-1].access_token
    response = await process(client, owner, guid, PARAMETERS, account=account_id)
    assert response.status == HTTPStatus.OK, await response.text()
    assert await response.json() == {"status": 204}
    assert domo_hosts.seen.salesforce == [
        {
            "path": "/services/data/v22.0/sobjects/Opportunity/006Dn00000A1b2C",
            "query": {"_HttpMethod": "PATCH"},
            "authorization": f"Bearer {token}",
            "body": {"StageName": "Closed Won"},
        }
    ]
    record = await run_record(client, owner, response)
    assert (record["kind"], record["status"], record["scope"]) == ("action", "success", "personal")
    assert token not in str(record)


async def test_an_expired_token_is_refreshed_during_the_call(
    client: Client, owner: Caller, provider: FakeProvider, domo_hosts: DomoHosts
) -> None:
    guid = await _salesforce_action(client, owner, provider)
    account_id = (await connect(client, owner, "salesforce", name="Salesforce"))["account_id"]
    old = provider.families[-1].access_token
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(token_expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await process(client, owner, guid, PARAMETERS, account=account_id)
    assert response.status == HTTPStatus.OK, await response.text()
    new = provider.families[-1].access_token
    assert new != old
    assert [seen["authorization"] for seen in domo_hosts.seen.salesforce] == [f"Bearer {new}"]
    record = await run_record(client, owner, response)
    assert record["timings"]["resolution_ms"] > 0
