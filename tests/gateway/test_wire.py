"""JSON bodies (SPEC 4.3): JSON media types only, an empty body without a type counts as `{}`."""

from __future__ import annotations

import json
from http import HTTPStatus

from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import create_connector

USER = {"email": "tess@acme.test", "name": "Tess"}


async def test_a_json_body_sent_as_text_is_refused_and_creates_nothing(
    client: Client, admin: Caller
) -> None:
    refused = await client.post(
        "/api/v1/users",
        headers={**admin.headers, "Content-Type": "text/plain"},
        data=json.dumps(USER),
    )
    await problem(refused, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    # Had the refused request created the user, the same email would now be a 409.
    created = await client.post("/api/v1/users", headers=admin.headers, json=USER)
    assert created.status == HTTPStatus.CREATED


async def test_a_body_without_a_content_type_is_refused(client: Client, admin: Caller) -> None:
    refused = await client.post(
        "/api/v1/users", headers=admin.headers, data=json.dumps(USER).encode()
    )
    await problem(refused, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")


async def test_json_suffix_types_are_json(client: Client, owner: Caller) -> None:
    connector = await create_connector(client, owner)
    changed = await client.patch(
        f"/api/v1/connectors/{connector['guid']}",
        headers={**owner.headers, "Content-Type": "application/merge-patch+json"},
        data=json.dumps({"description": "merged"}),
    )
    assert changed.status == HTTPStatus.OK
    assert (await changed.json())["description"] == "merged"


async def test_an_empty_body_without_a_type_is_an_empty_object(
    client: Client, owner: Caller
) -> None:
    tokens = f"/api/v1/users/{owner.user_id}/tokens"
    # aiohttp's client sends application/octet-stream on an empty body; curl sends no type.
    created = await client.post(tokens, headers=owner.headers)
    assert created.status == HTTPStatus.CREATED
    assert (await created.json())["name"] == "api"
    created = await client.post(tokens, headers=owner.headers, skip_auto_headers={"Content-Type"})
    assert created.status == HTTPStatus.CREATED
    typed = await client.post(
        f"/api/v1/users/{owner.user_id}/tokens",
        headers={**owner.headers, "Content-Type": "text/plain"},
    )
    await problem(typed, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")


async def test_an_empty_patch_changes_nothing(client: Client, owner: Caller) -> None:
    connector = await create_connector(client, owner)
    url = f"/api/v1/connectors/{connector['guid']}"
    for unchanged in (
        await client.patch(url, headers=owner.headers, json={}),
        await client.patch(url, headers=owner.headers),
    ):
        assert unchanged.status == HTTPStatus.OK
        assert await unchanged.json() == connector


async def test_a_null_list_in_a_patch_is_refused_not_a_server_error(
    client: Client, owner: Caller
) -> None:
    # A length limit beside `| None` must not be applied to null (it raised a TypeError: 500).
    connector = await create_connector(client, owner)
    response = await client.patch(
        f"/api/v1/connectors/{connector['guid']}", headers=owner.headers, json={"reports": None}
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert "reports cannot be null" in body["errors"][0]["msg"]


async def test_a_long_email_makes_a_user_whose_name_fits(client: Client, admin: Caller) -> None:
    # Found by the fuzzer on PostgreSQL: the name defaulted to a 320-character address.
    email = "a" * 250 + "@acme.test"
    created = await client.post("/api/v1/users", headers=admin.headers, json={"email": email})
    assert created.status == HTTPStatus.CREATED
    user = await created.json()
    assert (user["email"], user["name"]) == (email, email[:200])
