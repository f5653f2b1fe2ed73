"""Identity over HTTP: tokens, roles, tenancy (THREATS I1, I2)."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from gateway.identity.principal import Role
from tests.gateway.callers import Caller, Client, add_user, make_caller, problem


@pytest.fixture
async def root(client: Client) -> Caller:
    """The platform admin of customer `acme`."""
    return await make_caller(client, "acme", "root@acme.test", Role.PLATFORM_ADMIN)


@pytest.fixture
async def globex_admin(client: Client) -> Caller:
    """A customer admin of another customer."""
    return await make_caller(client, "globex", "gina@globex.test", Role.ADMIN)


async def test_i1_no_token_is_401_with_a_challenge(client: Client) -> None:
    response = await client.get("/api/v1/me")
    await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'


@pytest.mark.parametrize(
    "authorization",
    ["Bearer gw_" + "x" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer ", "gw_token"],
)
async def test_i1_invalid_token_is_401(client: Client, authorization: str) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": authorization})
    await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_i1_revoked_token_is_401_at_once(client: Client, root: Caller) -> None:
    created = await client.post(
        f"/api/v1/users/{root.user_id}/tokens", headers=root.headers, json={"name": "temporary"}
    )
    assert created.status == HTTPStatus.CREATED
    token = (await created.json())["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=other)).status == HTTPStatus.OK
    token_id = (await created.json())["id"]
    revoked = await client.delete(
        f"/api/v1/users/{root.user_id}/tokens/{token_id}", headers=root.headers
    )
    assert revoked.status == HTTPStatus.NO_CONTENT
    await problem(
        await client.get("/api/v1/me", headers=other), HTTPStatus.UNAUTHORIZED, "unauthenticated"
    )


async def test_me(client: Client, root: Caller) -> None:
    response = await client.get("/api/v1/me", headers=root.headers)
    assert response.status == HTTPStatus.OK
    body = await response.json()
    assert body["id"] == root.user_id
    assert (body["email"], body["role"], body["customer_id"]) == (
        "root@acme.test",
        "platform_admin",
        root.customer_id,
    )


async def test_platform_admin_creates_customers_and_their_users(
    client: Client, root: Caller
) -> None:
    created = await client.post("/api/v1/customers", headers=root.headers, json={"name": "initech"})
    assert created.status == HTTPStatus.CREATED
    customer = await created.json()
    assert created.headers["Location"] == f"/api/v1/customers/{customer['id']}"
    user = await client.post(
        "/api/v1/users",
        headers=root.headers,
        json={
            "email": "bill@initech.test",
            "name": "Bill",
            "role": "admin",
            "customer_id": customer["id"],
        },
    )
    assert user.status == HTTPStatus.CREATED
    assert (await user.json())["customer_id"] == customer["id"]
    await problem(
        await client.post("/api/v1/customers", headers=root.headers, json={"name": "initech"}),
        HTTPStatus.CONFLICT,
        "conflict",
    )


async def test_roles_are_enforced(client: Client, root: Caller, globex_admin: Caller) -> None:
    await problem(
        await client.post("/api/v1/customers", headers=globex_admin.headers, json={"name": "x"}),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    member = await add_user(client, globex_admin, "mo@globex.test", Role.MEMBER)
    await problem(
        await client.post("/api/v1/users", headers=member.headers, json={"email": "a@b.test"}),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    await problem(
        await client.post(
            "/api/v1/users",
            headers=globex_admin.headers,
            json={"email": "boss@globex.test", "role": "platform_admin"},
        ),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    await problem(
        await client.post(
            "/api/v1/users",
            headers=globex_admin.headers,
            json={"email": "spy@acme.test", "customer_id": root.customer_id},
        ),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    made = await client.post(
        "/api/v1/users", headers=globex_admin.headers, json={"email": "Zed@Globex.test"}
    )
    assert made.status == HTTPStatus.CREATED
    body = await made.json()
    assert (body["email"], body["role"], body["name"]) == (
        "zed@globex.test",
        "member",
        "Zed@Globex.test",
    )


async def test_members_manage_only_their_own_tokens(client: Client, globex_admin: Caller) -> None:
    ann = await add_user(client, globex_admin, "ann@globex.test", Role.MEMBER)
    bob = await add_user(client, globex_admin, "bob@globex.test", Role.MEMBER)
    await problem(
        await client.post(f"/api/v1/users/{bob.user_id}/tokens", headers=ann.headers),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    # The admin manages Bob's tokens; Bob sees them without secrets.
    issued = await client.post(f"/api/v1/users/{bob.user_id}/tokens", headers=globex_admin.headers)
    assert issued.status == HTTPStatus.CREATED
    secret = (await issued.json())["token"]
    listed = await client.get(f"/api/v1/users/{bob.user_id}/tokens", headers=bob.headers)
    assert listed.status == HTTPStatus.OK
    page = await listed.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None
    assert secret not in await listed.text()


async def test_i2_another_customers_objects_are_404(
    client: Client, root: Caller, globex_admin: Caller
) -> None:
    for path in (
        f"/api/v1/users/{root.user_id}",
        f"/api/v1/users/{root.user_id}/tokens",
        f"/api/v1/customers/{root.customer_id}",
    ):
        await problem(
            await client.get(path, headers=globex_admin.headers), HTTPStatus.NOT_FOUND, "not_found"
        )
    await problem(
        await client.post(f"/api/v1/users/{root.user_id}/tokens", headers=globex_admin.headers),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    await problem(
        await client.delete(
            f"/api/v1/users/{root.user_id}/tokens/anything", headers=globex_admin.headers
        ),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )


async def test_bad_bodies_are_clear_problems(client: Client, root: Caller) -> None:
    broken = await client.post(
        "/api/v1/customers",
        headers={**root.headers, "Content-Type": "application/json"},
        data=b"{not json",
    )
    await problem(broken, HTTPStatus.BAD_REQUEST, "invalid_json")
    invalid = await client.post(
        "/api/v1/users",
        headers=root.headers,
        json={"email": "not-an-email", "role": "king", "extra": 1},
    )
    body = await problem(invalid, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    fields = {tuple(error["loc"]) for error in body["errors"]}
    assert fields == {("email",), ("role",), ("extra",)}
    limit = await client.get(f"/api/v1/users/{root.user_id}/tokens?limit=500", headers=root.headers)
    await problem(limit, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
