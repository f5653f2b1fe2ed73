"""Accounts over HTTP: validated by the auth script, sealed, shared, used by runs (I2, I4, S1)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import Upstream, create_connector, put_script

GOOD_KEY = "k-123-secret"
AUTH = """
httprequest.addHeader('X-Api-Key', metadata.account.apikey);
httprequest.get('http://{host}/whoami');
if (httprequest.getStatusCode() == 200) {{ auth.authenticationSuccess(); }}
else {{ auth.authenticationFailed('That API key is not valid.'); }}
"""
PROCESS = """
DOMO.log('using ' + metadata.account.apikey + ' in ' + metadata.account.region);
httprequest.addHeader('X-Api-Key', metadata.account.apikey);
datagrid.magicParseJSON(httprequest.get('http://{host}/whoami'));
"""


@pytest.fixture
async def crm(client: Client, owner: Caller, upstream: Upstream) -> dict[str, Any]:
    """An apikey connector with a `region` field, whose scripts call the fake upstream."""
    connector = await create_connector(
        client,
        owner,
        key="whoami",
        auth={"method": "apikey"},
        allowed_hosts=[upstream.host],
        account_fields=[{"name": "region", "label": "Region"}],
    )
    await put_script(client, owner, connector["guid"], "auth", AUTH.format(host=upstream.host))
    await put_script(
        client, owner, connector["guid"], "process", PROCESS.format(host=upstream.host)
    )
    return connector


async def _create(client: Client, caller: Caller, key: str = GOOD_KEY, **extra: Any) -> Any:
    body = {
        "connector_key": "whoami",
        "name": "My key",
        "credentials": {"apikey": key, "region": "eu", **extra},
    }
    return await client.post("/api/v1/accounts", headers=caller.headers, json=body)


async def test_create_validates_with_the_auth_script_and_hides_the_secret(
    client: Client, owner: Caller, crm: dict[str, Any], upstream: Upstream
) -> None:
    response = await _create(client, owner)
    assert response.status == HTTPStatus.CREATED, await response.text()
    account = await response.json()
    assert response.headers["Location"] == f"/api/v1/accounts/{account['id']}"
    assert GOOD_KEY not in await response.text()
    assert (account["fields"], account["secret_fields"], account["status"]) == (
        {"region": "eu"},
        ["apikey"],
        "valid",
    )
    assert upstream.seen[-1]["X-Api-Key"] == GOOD_KEY
    listed = await (await client.get("/api/v1/accounts", headers=owner.headers)).json()
    assert [a["id"] for a in listed["items"]] == [account["id"]]
    assert GOOD_KEY not in str(listed)


async def test_rejected_credentials_are_the_scripts_message_and_store_nothing(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    body = await problem(
        await _create(client, owner, key="wrong-key"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "credentials_rejected",
    )
    assert body["detail"] == "That API key is not valid."
    assert "wrong-key" not in str(body)
    listed = await (await client.get("/api/v1/accounts", headers=owner.headers)).json()
    assert listed == {"items": [], "next_cursor": None}


async def test_undeclared_fields_and_unknown_providers_are_refused(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    body = await problem(
        await _create(client, owner, password="x"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert body["errors"][0]["loc"] == ["credentials", "password"]
    await problem(
        await client.post(
            "/api/v1/accounts",
            headers=owner.headers,
            json={"connector_key": "nope", "name": "x", "credentials": {}},
        ),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )


async def test_a_dev_run_uses_the_stored_account_and_redacts_it(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    account = await (await _create(client, owner)).json()
    response = await client.post(
        f"/api/v1/connectors/{crm['guid']}/runs",
        headers=owner.headers,
        json={"mode": "process", "account_id": account["id"], "report": "Opportunities"},
    )
    assert response.status == HTTPStatus.OK, await response.text()
    run = await response.json()
    assert run["status"] == "success"
    assert run["rows"] == [[1, "Ann"], [2, "Bob"]]
    assert run["logs"] == ["using [redacted] in eu"]
    stored = await client.get(f"/api/v1/runs/{run['run_id']}", headers=owner.headers)
    assert GOOD_KEY not in await stored.text()


async def test_i4_sharing_decides_who_may_use_an_account(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, crm: dict[str, Any]
) -> None:
    account = await (await _create(client, owner)).json()
    path = f"/api/v1/accounts/{account['id']}"
    await problem(
        await client.get(path, headers=colleague.headers),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    await problem(
        await client.post(
            f"{path}/shares", headers=colleague.headers, json={"user_id": colleague.user_id}
        ),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    shared = await client.post(
        f"{path}/shares", headers=owner.headers, json={"user_id": colleague.user_id}
    )
    assert shared.status == HTTPStatus.OK
    assert (await shared.json())["shared_with"] == [colleague.user_id]
    assert (await client.get(path, headers=colleague.headers)).status == HTTPStatus.OK
    # The list shows the shares as the account itself does, to the owner and to the colleague.
    for caller in (owner, colleague):
        listed = await (await client.get("/api/v1/accounts", headers=caller.headers)).json()
        assert [a["shared_with"] for a in listed["items"]] == [[colleague.user_id]]
    # A user it is shared with uses it but cannot change it; the customer's admin can.
    await problem(
        await client.patch(path, headers=colleague.headers, json={"name": "mine"}),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    renamed = await client.patch(path, headers=admin.headers, json={"name": "Team key"})
    assert (await renamed.json())["name"] == "Team key"
    unshared = await client.delete(f"{path}/shares/{colleague.user_id}", headers=owner.headers)
    assert unshared.status == HTTPStatus.NO_CONTENT
    await problem(
        await client.get(path, headers=colleague.headers),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )


async def test_i2_another_customer_sees_nothing(
    client: Client, owner: Caller, outsider: Caller, crm: dict[str, Any]
) -> None:
    account = await (await _create(client, owner)).json()
    path = f"/api/v1/accounts/{account['id']}"
    for response in (
        await client.get(path, headers=outsider.headers),
        await client.patch(path, headers=outsider.headers, json={"name": "x"}),
        await client.delete(path, headers=outsider.headers),
        await client.post(
            f"{path}/shares", headers=outsider.headers, json={"user_id": outsider.user_id}
        ),
        await client.delete(f"{path}/shares/{owner.user_id}", headers=outsider.headers),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    await problem(
        await client.post(
            f"{path}/shares", headers=owner.headers, json={"user_id": outsider.user_id}
        ),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )


async def test_new_credentials_are_validated_and_a_rejection_keeps_the_old(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    account = await (await _create(client, owner)).json()
    path = f"/api/v1/accounts/{account['id']}"
    await problem(
        await client.patch(
            path, headers=owner.headers, json={"credentials": {"apikey": "bad", "region": "us"}}
        ),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "credentials_rejected",
    )
    assert (await (await client.get(path, headers=owner.headers)).json())["fields"] == {
        "region": "eu"
    }
    deleted = await client.delete(path, headers=owner.headers)
    assert deleted.status == HTTPStatus.NO_CONTENT
    await problem(await client.get(path, headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found")
