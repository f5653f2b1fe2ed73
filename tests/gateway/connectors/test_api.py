"""Connectors over HTTP: create, read, change, delete; validation, rights, tenancy (I2)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from sqlalchemy import select

from gateway.connectors.tables import connectors
from gateway.crypto import DecryptionError
from gateway.keys import ENGINE, VAULT
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import (
    connector_body,
    create_connector,
    make_png,
)

OAUTH = {
    "method": "oauth2",
    "authorization_url": "https://login.example.com/authorize",
    "token_url": "https://login.example.com/token",
    "client_id": "client-1",
    "client_secret": "very-secret-client-secret",
    "scopes": ["read", "write"],
    "extra_params": {"prompt": "consent"},
}


async def test_create_read_list_change_delete(client: Client, owner: Caller) -> None:
    response = await client.post(
        "/api/v1/connectors",
        headers=owner.headers,
        json=connector_body(
            auth=OAUTH,
            account_fields=[
                {"name": "instance", "label": "Instance"},
                {"name": "pin", "secret": True},
            ],
            parameters=[
                {"name": "Stage", "type": "dropdown", "options": ["Open", "Won"], "help": "h"},
                {"name": "Since", "type": "date", "required": True},
            ],
            limits={"wall_time_s": 60, "http_calls": 500},
        ),
    )
    assert response.status == HTTPStatus.CREATED
    created = await response.json()
    assert response.headers["Location"] == f"/api/v1/connectors/{created['guid']}"
    text = await response.text()
    assert "very-secret-client-secret" not in text
    assert "pw-in-url" not in text
    assert created["auth"] == {
        "method": "oauth2",
        "authorization_url": "https://login.example.com/authorize",
        "token_url": "https://login.example.com/token",
        "client_id": "client-1",
        "scopes": ["read", "write"],
        "extra_params": {"prompt": "consent"},
        # Stored sealed; responses only say that it is set.
        "client_secret_set": True,
    }
    assert (created["owner_id"], created["customer_id"]) == (owner.user_id, owner.customer_id)
    assert (created["scope"], created["status"], created["kind"]) == (
        "personal",
        "draft",
        "connector",
    )
    assert created["account_fields"] == [
        {"name": "instance", "label": "Instance", "secret": False, "required": False},
        {"name": "pin", "label": "pin", "secret": True, "required": False},
    ]
    assert created["parameters"][1] == {
        "name": "Since",
        "type": "date",
        "required": True,
        "options": [],
        "help": "",
    }
    assert created["limits"]["wall_time_s"] == 60
    assert created["limits"]["memory_mb"] is None
    assert (created["scripts"], created["icons"]) == ([], [])

    got = await client.get(f"/api/v1/connectors/{created['guid']}", headers=owner.headers)
    assert got.status == HTTPStatus.OK
    assert await got.json() == created

    listed = await client.get("/api/v1/connectors", headers=owner.headers)
    assert (await listed.json()) == {"items": [created], "next_cursor": None}

    changed = await client.patch(
        f"/api/v1/connectors/{created['guid']}",
        headers=owner.headers,
        json={
            "name": "Sample CRM 2",
            "reports": ["Opportunities", "Leads"],
            "auth": {"method": "apikey"},
        },
    )
    assert changed.status == HTTPStatus.OK
    body = await changed.json()
    assert (body["name"], body["reports"], body["auth"]) == (
        "Sample CRM 2",
        ["Opportunities", "Leads"],
        {"method": "apikey"},
    )
    assert body["key"] == "samplecrm"
    assert body["updated_at"] > created["updated_at"]

    deleted = await client.delete(f"/api/v1/connectors/{created['guid']}", headers=owner.headers)
    assert deleted.status == HTTPStatus.NO_CONTENT
    await problem(
        await client.get(f"/api/v1/connectors/{created['guid']}", headers=owner.headers),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )


async def test_the_client_secret_is_never_stored_in_plain_text(
    client: Client, owner: Caller
) -> None:
    created = await create_connector(client, owner, auth=OAUTH)
    async with client.app[ENGINE].connect() as connection:
        row = (
            await connection.execute(select(connectors).where(connectors.c.guid == created["guid"]))
        ).one()
    assert "very-secret-client-secret" not in repr(tuple(row))
    assert b"very-secret-client-secret" not in row.client_secret_ciphertext
    opened = client.app[VAULT].open_client_secret(
        row.customer_id, row.id, row.client_secret_key_id, row.client_secret_ciphertext
    )
    assert opened == "very-secret-client-secret"
    with pytest.raises(DecryptionError):  # bound to its connector (THREATS S2)
        client.app[VAULT].open_client_secret(
            row.customer_id,
            "another-connector",
            row.client_secret_key_id,
            row.client_secret_ciphertext,
        )


async def test_lists_are_paginated(client: Client, owner: Caller) -> None:
    for index in range(3):
        await create_connector(client, owner, key=f"k{index}")
    first = await (await client.get("/api/v1/connectors?limit=2", headers=owner.headers)).json()
    assert [c["key"] for c in first["items"]] == ["k0", "k1"]
    second = await (
        await client.get(
            f"/api/v1/connectors?limit=2&cursor={first['next_cursor']}", headers=owner.headers
        )
    ).json()
    assert ([c["key"] for c in second["items"]], second["next_cursor"]) == (["k2"], None)
    await problem(
        await client.get("/api/v1/connectors?limit=0", headers=owner.headers),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"allowed_hosts": ["api.example.com", "bad host!"]}, ["allowed_hosts", 1], "bad host!"),
        ({"allowed_hosts": ["*.*.example.com"]}, ["allowed_hosts", 0], "*.*.example.com"),
        (
            {"auth": {**OAUTH, "token_url": "ftp://login.example.com/token"}},
            ["auth", "oauth2", "token_url"],
            "not an http(s) URL with a host",
        ),
        (
            {"auth": {**OAUTH, "authorization_url": "javascript:alert(1)"}},
            ["auth", "oauth2", "authorization_url"],
            "not an http(s) URL",
        ),
        (
            {"auth": {**OAUTH, "token_url": "https://user:pw-in-url@login.example.com/t"}},
            ["auth", "oauth2", "token_url"],
            "must not hold credentials",
        ),
        ({"auth": {"method": "kerberos"}}, ["auth"], "method"),
        ({"auth": {"method": "basic", "client_id": "x"}}, ["auth", "basic", "client_id"], "Extra"),
        ({"limits": {"memory_mb": 100_000}}, ["limits", "memory_mb"], "512"),
        ({"limits": {"wall_time_s": 0}}, ["limits", "wall_time_s"], "greater than 0"),
        ({"limits": {"stack_kb": 10}}, ["limits", "stack_kb"], "Extra"),
        ({"key": "has space"}, ["key"], "pattern"),
        ({"kind": "widget"}, ["kind"], "action"),
        ({"name": "  "}, ["name"], "space"),
        (
            {"parameters": [{"name": "a", "type": "string"}, {"name": "a", "type": "integer"}]},
            ["parameters"],
            "parameter 'a' appears twice",
        ),
        ({"parameters": [{"name": "p", "type": "dropdown"}]}, ["parameters", 0], "needs options"),
        (
            {"parameters": [{"name": "p", "type": "string", "options": ["x"]}]},
            ["parameters", 0],
            "only dropdown",
        ),
        ({"parameters": [{"name": "a/b", "type": "string"}]}, ["parameters", 0, "name"], "pattern"),
        ({"parameters": [{"name": "p", "type": "color"}]}, ["parameters", 0, "type"], "string"),
        ({"account_fields": [{"name": "password"}]}, ["account_fields", 0, "name"], "standard"),
        ({"account_fields": [{"name": "9lives"}]}, ["account_fields", 0, "name"], "pattern"),
        ({"reports": ["A", "A"]}, ["reports"], "report 'A' appears twice"),
        ({"surprise": 1}, ["surprise"], "Extra"),
    ],
)
async def test_invalid_definitions_are_precise_problems(
    client: Client, owner: Caller, changes: dict[str, Any], loc: list[Any], message: str
) -> None:
    response = await client.post(
        "/api/v1/connectors", headers=owner.headers, json=connector_body(**changes)
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    matching = [e for e in body["errors"] if e["loc"] == loc]
    assert matching, body["errors"]
    assert message in matching[0]["msg"], matching[0]["msg"]
    text = await response.text()
    assert "very-secret-client-secret" not in text
    assert "pw-in-url" not in text


async def test_missing_fields_and_broken_json(client: Client, owner: Caller) -> None:
    body = await problem(
        await client.post("/api/v1/connectors", headers=owner.headers, json={}),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert {tuple(e["loc"]) for e in body["errors"]} == {("kind",), ("name",), ("key",)}
    await problem(
        await client.post(
            "/api/v1/connectors",
            headers={**owner.headers, "Content-Type": "application/json"},
            data=b"{nope",
        ),
        HTTPStatus.BAD_REQUEST,
        "invalid_json",
    )
    created = await create_connector(client, owner)
    body = await problem(
        await client.patch(
            f"/api/v1/connectors/{created['guid']}", headers=owner.headers, json={"name": None}
        ),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert "name cannot be null" in body["errors"][0]["msg"]


async def test_keys_are_unique_within_a_customer(
    client: Client, owner: Caller, colleague: Caller, outsider: Caller
) -> None:
    await create_connector(client, owner)
    body = await problem(
        await client.post("/api/v1/connectors", headers=colleague.headers, json=connector_body()),
        HTTPStatus.CONFLICT,
        "conflict",
    )
    assert "samplecrm" in body["detail"]
    # Another customer has keys of its own.
    await create_connector(client, outsider)
    other = await create_connector(client, owner, key="other")
    await problem(
        await client.patch(
            f"/api/v1/connectors/{other['guid']}", headers=owner.headers, json={"key": "samplecrm"}
        ),
        HTTPStatus.CONFLICT,
        "conflict",
    )


async def test_oauth_secret_survives_an_update_without_one(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner, auth=OAUTH)
    without_secret = {k: v for k, v in OAUTH.items() if k != "client_secret"}
    changed = await client.patch(
        f"/api/v1/connectors/{created['guid']}",
        headers=owner.headers,
        json={"auth": {**without_secret, "scopes": ["read"]}},
    )
    assert changed.status == HTTPStatus.OK
    assert (await changed.json())["auth"]["scopes"] == ["read"]


async def test_members_read_owner_and_admins_change(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    created = await create_connector(client, owner)
    path = f"/api/v1/connectors/{created['guid']}"
    assert (await client.get(path, headers=colleague.headers)).status == HTTPStatus.OK
    listed = await (await client.get("/api/v1/connectors", headers=colleague.headers)).json()
    assert [c["guid"] for c in listed["items"]] == [created["guid"]]
    for response in (
        await client.patch(path, headers=colleague.headers, json={"name": "mine now"}),
        await client.delete(path, headers=colleague.headers),
        await client.put(
            path + "/scripts/process",
            headers={**colleague.headers, "Content-Type": "application/javascript"},
            data=b"DOMO.log(1);",
        ),
        await client.put(
            path + "/icons/icon",
            headers={**colleague.headers, "Content-Type": "image/png"},
            data=make_png(512, 512),
        ),
    ):
        await problem(response, HTTPStatus.FORBIDDEN, "forbidden")
    changed = await client.patch(path, headers=admin.headers, json={"name": "Renamed by admin"})
    assert changed.status == HTTPStatus.OK
    assert (await client.delete(path, headers=admin.headers)).status == HTTPStatus.NO_CONTENT


async def test_i2_another_customers_connector_is_404_everywhere(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    created = await create_connector(client, owner)
    path = f"/api/v1/connectors/{created['guid']}"
    js = {**outsider.headers, "Content-Type": "application/javascript"}
    png = {**outsider.headers, "Content-Type": "image/png"}
    responses = [
        await client.get(path, headers=outsider.headers),
        await client.patch(path, headers=outsider.headers, json={"name": "x"}),
        await client.delete(path, headers=outsider.headers),
        await client.put(path + "/scripts/auth", headers=js, data=b"auth.authenticationSuccess();"),
        await client.get(path + "/scripts/auth", headers=outsider.headers),
        await client.put(path + "/scripts/discovery/p", headers=js, data=b"DOMO.log(1);"),
        await client.get(path + "/scripts/discovery/p", headers=outsider.headers),
        await client.put(path + "/icons/icon", headers=png, data=make_png(512, 512)),
        await client.get(path + "/icons/icon", headers=outsider.headers),
        await client.post(path + "/runs", headers=outsider.headers, json={"mode": "auth"}),
    ]
    for response in responses:
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    listed = await (await client.get("/api/v1/connectors", headers=outsider.headers)).json()
    assert listed["items"] == []
    # The connector is untouched.
    assert (await (await client.get(path, headers=owner.headers)).json()) == created


async def test_every_endpoint_needs_a_caller(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner)
    path = f"/api/v1/connectors/{created['guid']}"
    for response in (
        await client.get("/api/v1/connectors"),
        await client.post("/api/v1/connectors", json=connector_body()),
        await client.get(path),
        await client.get(path + "/scripts/process"),
        await client.post(path + "/runs", json={}),
        await client.get("/api/v1/runs"),
    ):
        await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")
