"""Instances and per-user account mappings (I4), and the lookup the action endpoint uses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from gateway.apps.errors import AliasNotMapped
from gateway.errors import NotFound
from gateway.identity.principal import Principal, Role
from gateway.keys import ACCOUNTS, APPS
from tests.gateway.apps.conftest import make_account, manifest
from tests.gateway.callers import Caller, Client, problem

pytestmark = pytest.mark.usefixtures("providers")


async def _app(client: Client, caller: Caller) -> str:
    response = await client.post("/api/v1/apps", headers=caller.headers, json=manifest())
    assert response.status == HTTPStatus.CREATED, await response.text()
    return str((await response.json())["id"])


async def _instance(client: Client, caller: Caller, app_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/apps/{app_id}/instances", headers=caller.headers, json=body
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    created: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/v1/apps/{app_id}/instances/{created['id']}"
    return created


async def _map(
    client: Client, caller: Caller, app_id: str, iid: str, alias: str, account_id: str
) -> Any:
    return await client.put(
        f"/api/v1/apps/{app_id}/instances/{iid}/accounts/{alias}",
        headers=caller.headers,
        json={"account_id": account_id},
    )


async def _mappings(client: Client, caller: Caller, app_id: str, iid: str) -> dict[str, str]:
    response = await client.get(
        f"/api/v1/apps/{app_id}/instances/{iid}/accounts", headers=caller.headers
    )
    assert response.status == HTTPStatus.OK, await response.text()
    page = await response.json()
    assert page["next_cursor"] is None
    return {item["alias"]: item["account_id"] for item in page["items"]}


def _principal(caller: Caller) -> Principal:
    return Principal(caller.user_id, caller.customer_id, Role.MEMBER)


async def test_instances_are_placed_named_and_listed(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    first = await _instance(client, owner, app_id)
    second = await _instance(client, owner, app_id, name="East team")
    assert (first["name"], second["name"]) == ("Sales board", "East team")
    assert first["created_by"] == owner.user_id
    listed = await client.get(f"/api/v1/apps/{app_id}/instances?limit=1", headers=owner.headers)
    page = await listed.json()
    assert [item["id"] for item in page["items"]] == [first["id"]]
    rest = await client.get(
        f"/api/v1/apps/{app_id}/instances?cursor={page['next_cursor']}", headers=owner.headers
    )
    assert await rest.json() == {"items": [second], "next_cursor": None}


async def test_mappings_are_per_user_and_per_instance(
    client: Client, owner: Caller, colleague: Caller
) -> None:
    app_id = await _app(client, owner)
    east = (await _instance(client, owner, app_id))["id"]
    west = (await _instance(client, owner, app_id))["id"]
    olga_east = await make_account(client, owner, "crm", "east")
    olga_west = await make_account(client, owner, "crm", "west")
    carl = await make_account(client, colleague, "crm", "carl")
    for caller, iid, account in [
        (owner, east, olga_east),
        (owner, west, olga_west),
        (colleague, east, carl),
    ]:
        response = await _map(client, caller, app_id, iid, "sales", account.id)
        assert response.status == HTTPStatus.OK, await response.text()
        assert (await response.json())["provider_key"] == "crm"
    assert await _mappings(client, owner, app_id, east) == {"sales": olga_east.id}
    assert await _mappings(client, owner, app_id, west) == {"sales": olga_west.id}
    assert await _mappings(client, colleague, app_id, east) == {"sales": carl.id}
    assert await _mappings(client, colleague, app_id, west) == {}
    apps = client.app[APPS]
    assert await apps.mapped_account(_principal(owner), east, "sales") == olga_east.id
    assert await apps.mapped_account(_principal(owner), west, "sales") == olga_west.id
    assert await apps.mapped_account(_principal(colleague), east, "sales") == carl.id
    with pytest.raises(AliasNotMapped):
        await apps.mapped_account(_principal(colleague), west, "sales")
    with pytest.raises(AliasNotMapped):
        await apps.mapped_account(_principal(owner), east, "books")


async def test_mapping_again_replaces_the_account(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    first = await make_account(client, owner, "erp", "one")
    second = await make_account(client, owner, "erp", "two")
    await _map(client, owner, app_id, iid, "books", first.id)
    response = await _map(client, owner, app_id, iid, "books", second.id)
    assert response.status == HTTPStatus.OK
    assert await _mappings(client, owner, app_id, iid) == {"books": second.id}


async def test_a_shared_account_may_be_mapped_an_unshared_one_not(
    client: Client, owner: Caller, colleague: Caller
) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    olga = await make_account(client, owner, "crm", "olga")
    refused = await _map(client, colleague, app_id, iid, "sales", olga.id)
    await problem(refused, HTTPStatus.FORBIDDEN, "account_not_accessible")
    shared = await client.post(
        f"/api/v1/accounts/{olga.id}/shares",
        headers=owner.headers,
        json={"user_id": colleague.user_id},
    )
    assert shared.status == HTTPStatus.OK
    allowed = await _map(client, colleague, app_id, iid, "sales", olga.id)
    assert allowed.status == HTTPStatus.OK, await allowed.text()
    assert await _mappings(client, colleague, app_id, iid) == {"sales": olga.id}


async def test_an_admin_does_not_borrow_a_members_account(
    client: Client, owner: Caller, admin: Caller
) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    olga = await make_account(client, owner, "crm", "olga")
    refused = await _map(client, admin, app_id, iid, "sales", olga.id)
    await problem(refused, HTTPStatus.FORBIDDEN, "account_not_accessible")


async def test_another_customers_account_is_not_found(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    gina = await make_account(client, outsider, "crm", "gina")
    refused = await _map(client, owner, app_id, iid, "sales", gina.id)
    await problem(refused, HTTPStatus.NOT_FOUND, "not_found")


async def test_an_account_of_another_provider_is_a_mismatch(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    erp = await make_account(client, owner, "erp", "books")
    refused = await _map(client, owner, app_id, iid, "sales", erp.id)
    body = await problem(refused, HTTPStatus.UNPROCESSABLE_ENTITY, "provider_mismatch")
    assert "'crm'" in body["detail"]
    assert await _mappings(client, owner, app_id, iid) == {}


async def test_an_undeclared_alias_or_instance_is_not_found(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    other_app = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    account = await make_account(client, owner, "crm")
    unknown_alias = await _map(client, owner, app_id, iid, "nosuch", account.id)
    assert "nosuch" in (await problem(unknown_alias, HTTPStatus.NOT_FOUND, "not_found"))["detail"]
    wrong_app = await _map(client, owner, other_app, iid, "sales", account.id)
    await problem(wrong_app, HTTPStatus.NOT_FOUND, "not_found")
    with pytest.raises(NotFound):
        await client.app[APPS].mapped_account(_principal(owner), "no-such-instance", "sales")


async def test_an_instance_is_not_reachable_from_another_customer(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    with pytest.raises(NotFound):
        await client.app[APPS].mapped_account(_principal(outsider), iid, "sales")


async def test_deleting_an_account_removes_its_mappings(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    account = await make_account(client, owner, "crm")
    await _map(client, owner, app_id, iid, "sales", account.id)
    await client.app[ACCOUNTS].delete(_principal(owner), account.id)
    assert await _mappings(client, owner, app_id, iid) == {}
    with pytest.raises(AliasNotMapped):
        await client.app[APPS].mapped_account(_principal(owner), iid, "sales")


async def test_a_bad_mapping_body_is_refused(client: Client, owner: Caller) -> None:
    app_id = await _app(client, owner)
    iid = (await _instance(client, owner, app_id))["id"]
    response = await client.put(
        f"/api/v1/apps/{app_id}/instances/{iid}/accounts/sales",
        headers=owner.headers,
        json={"account": "x"},
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert {tuple(error["loc"]) for error in body["errors"]} == {("account_id",), ("account",)}
