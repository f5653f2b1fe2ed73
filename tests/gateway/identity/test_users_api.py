"""Managing users and their tokens over HTTP: who may do what (SPEC 4.2, THREATS I2)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from gateway.accounts.service import Provider
from gateway.identity.principal import Principal, Role
from gateway.keys import ACCOUNTS
from tests.gateway.callers import Caller, Client, add_user, problem


@pytest.fixture
async def root(client: Client, owner: Caller) -> Caller:
    """The platform admin, a user of `acme`."""
    return await add_user(client, owner, "root@acme.test", Role.PLATFORM_ADMIN)


async def _json(response: Any, status: HTTPStatus = HTTPStatus.OK) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_platform_admin_gives_a_new_customer_its_first_admin(
    client: Client, root: Caller
) -> None:
    customer = await _json(
        await client.post("/api/v1/customers", headers=root.headers, json={"name": "initech"}),
        HTTPStatus.CREATED,
    )
    bill = await _json(
        await client.post(
            "/api/v1/users",
            headers=root.headers,
            json={"email": "bill@initech.test", "role": "admin", "customer_id": customer["id"]},
        ),
        HTTPStatus.CREATED,
    )
    issued = await _json(
        await client.post(f"/api/v1/users/{bill['id']}/tokens", headers=root.headers),
        HTTPStatus.CREATED,
    )
    bills = {"Authorization": f"Bearer {issued['token']}"}
    me = await _json(await client.get("/api/v1/me", headers=bills))
    assert (me["id"], me["customer_id"], me["role"]) == (bill["id"], customer["id"], "admin")
    # Bill runs his customer from here; the platform admin still sees it.
    page = await _json(await client.get("/api/v1/users", headers=bills))
    assert [u["id"] for u in page["items"]] == [bill["id"]]
    seen = await client.get(f"/api/v1/users?customer_id={customer['id']}", headers=root.headers)
    assert [u["email"] for u in (await _json(seen))["items"]] == ["bill@initech.test"]
    assert (await _json(await client.get(f"/api/v1/users/{bill['id']}", headers=root.headers)))[
        "customer_id"
    ] == customer["id"]
    tokens = await _json(
        await client.get(f"/api/v1/users/{bill['id']}/tokens", headers=root.headers)
    )
    assert [t["id"] for t in tokens["items"]] == [issued["id"]]
    revoked = await client.delete(
        f"/api/v1/users/{bill['id']}/tokens/{issued['id']}", headers=root.headers
    )
    assert revoked.status == HTTPStatus.NO_CONTENT
    await problem(
        await client.get("/api/v1/me", headers=bills), HTTPStatus.UNAUTHORIZED, "unauthenticated"
    )


async def test_admins_list_their_customers_users_a_page_at_a_time(
    client: Client, owner: Caller, admin: Caller, colleague: Caller, outsider: Caller
) -> None:
    first = await _json(await client.get("/api/v1/users?limit=2", headers=admin.headers))
    assert len(first["items"]) == 2
    rest = await _json(
        await client.get(
            f"/api/v1/users?limit=2&cursor={first['next_cursor']}", headers=admin.headers
        )
    )
    assert (len(rest["items"]), rest["next_cursor"]) == (1, None)
    listed = [u["id"] for u in first["items"] + rest["items"]]
    assert sorted(listed) == sorted([owner.user_id, colleague.user_id, admin.user_id])
    await problem(
        await client.get("/api/v1/users", headers=owner.headers), HTTPStatus.FORBIDDEN, "forbidden"
    )
    await problem(
        await client.get("/api/v1/users?limit=0", headers=admin.headers),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    # Another customer's id is not found, for a customer admin; so is an unknown one.
    for customer_id in (outsider.customer_id, "no-such-customer"):
        await problem(
            await client.get(f"/api/v1/users?customer_id={customer_id}", headers=admin.headers),
            HTTPStatus.NOT_FOUND,
            "not_found",
        )


async def test_i2_another_customers_user_is_404_everywhere_for_a_customer_admin(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    user = f"/api/v1/users/{owner.user_id}"
    for method, path, body in (
        ("GET", user, None),
        ("PATCH", user, {"name": "Mallory"}),
        ("PATCH", user, {}),
        ("DELETE", user, None),
        ("GET", f"{user}/tokens", None),
        ("POST", f"{user}/tokens", {"name": "backdoor"}),
        ("DELETE", f"{user}/tokens/anything", None),
    ):
        response = await client.request(method, path, headers=outsider.headers, json=body)
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    assert (await client.get("/api/v1/me", headers=owner.headers)).status == HTTPStatus.OK


async def test_patch_rules(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, root: Caller
) -> None:
    path = f"/api/v1/users/{owner.user_id}"
    # An admin changes name, email and role; emails are lower-cased and unique.
    changed = await _json(
        await client.patch(
            path, headers=admin.headers, json={"name": "Olga K.", "email": "Olga.K@Acme.test"}
        )
    )
    assert (changed["name"], changed["email"], changed["role"]) == (
        "Olga K.",
        "olga.k@acme.test",
        "member",
    )
    await problem(
        await client.patch(path, headers=admin.headers, json={"email": "carl@acme.test"}),
        HTTPStatus.CONFLICT,
        "conflict",
    )
    # An empty body changes nothing.
    assert await _json(await client.patch(path, headers=admin.headers, json={})) == changed
    # A user renames itself, and nothing more; nor anyone else.
    renamed = await _json(await client.patch(path, headers=owner.headers, json={"name": "Olga"}))
    assert renamed["name"] == "Olga"
    for body in ({"role": "admin"}, {"email": "o@acme.test"}):
        await problem(
            await client.patch(path, headers=owner.headers, json=body),
            HTTPStatus.FORBIDDEN,
            "forbidden",
        )
    await problem(
        await client.patch(
            f"/api/v1/users/{colleague.user_id}", headers=owner.headers, json={"name": "x"}
        ),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    # Only platform admins grant platform_admin or touch a platform admin.
    await problem(
        await client.patch(path, headers=admin.headers, json={"role": "platform_admin"}),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    await problem(
        await client.patch(
            f"/api/v1/users/{root.user_id}", headers=admin.headers, json={"name": "Root?"}
        ),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    promoted = await client.patch(path, headers=admin.headers, json={"role": "admin"})
    assert (await _json(promoted))["role"] == "admin"
    # Nobody changes its own role, not even a platform admin.
    for caller in (admin, root):
        await problem(
            await client.patch(
                f"/api/v1/users/{caller.user_id}", headers=caller.headers, json={"role": "member"}
            ),
            HTTPStatus.FORBIDDEN,
            "forbidden",
        )
    await problem(
        await client.patch(path, headers=admin.headers, json={"role": "king"}),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )


async def test_a_customer_admin_cannot_act_as_its_platform_admin(
    client: Client, admin: Caller, root: Caller
) -> None:
    tokens = f"/api/v1/users/{root.user_id}/tokens"
    for response in (
        await client.post(tokens, headers=admin.headers),
        await client.get(tokens, headers=admin.headers),
        await client.delete(f"/api/v1/users/{root.user_id}", headers=admin.headers),
    ):
        await problem(response, HTTPStatus.FORBIDDEN, "forbidden")


async def test_delete_rules_and_what_goes_with_the_user(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, root: Caller
) -> None:
    account = await client.app[ACCOUNTS].create(
        Principal(owner.user_id, owner.customer_id, Role.MEMBER),
        Provider("crm", "basic"),
        "Olga's CRM",
        {"username": "olga", "password": "pw"},
        _accept,
    )
    connector = await _json(
        await client.post(
            "/api/v1/connectors",
            headers=owner.headers,
            json={
                "kind": "action", "name": "Greeter", "key": "greeter", "description": "",
                "auth": {"method": "basic"}, "allowed_hosts": [], "parameters": [],
                "reports": [],
            },
        ),
        HTTPStatus.CREATED,
    )  # fmt: skip
    path = f"/api/v1/users/{owner.user_id}"
    await problem(
        await client.delete(path, headers=colleague.headers), HTTPStatus.FORBIDDEN, "forbidden"
    )
    for caller in (admin, root):
        await problem(
            await client.delete(f"/api/v1/users/{caller.user_id}", headers=caller.headers),
            HTTPStatus.FORBIDDEN,
            "forbidden",
        )
    # Its connectors need a new owner of the same customer.
    body = await problem(
        await client.delete(path, headers=admin.headers), HTTPStatus.CONFLICT, "conflict"
    )
    assert "connectors_to" in body["detail"]
    for bad in (owner.user_id, "nobody"):
        await problem(
            await client.delete(f"{path}?connectors_to={bad}", headers=admin.headers),
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
    gone = await client.delete(f"{path}?connectors_to={colleague.user_id}", headers=admin.headers)
    assert gone.status == HTTPStatus.NO_CONTENT
    # Its token stops working at once; the user, its account are gone; the connector stays.
    await problem(
        await client.get("/api/v1/me", headers=owner.headers),
        HTTPStatus.UNAUTHORIZED,
        "unauthenticated",
    )
    for url in (path, f"/api/v1/accounts/{account.id}"):
        await problem(
            await client.get(url, headers=admin.headers), HTTPStatus.NOT_FOUND, "not_found"
        )
    kept = await client.get(f"/api/v1/connectors/{connector['guid']}", headers=colleague.headers)
    assert (await _json(kept))["owner_id"] == colleague.user_id
    await problem(
        await client.delete(path, headers=admin.headers), HTTPStatus.NOT_FOUND, "not_found"
    )


async def _accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None
