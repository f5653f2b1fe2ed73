"""Versions, the interim publish, scopes and the action list over HTTP (I2, I3)."""

from __future__ import annotations

from http import HTTPStatus

from tests.gateway.actions.conftest import publish, set_scope
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import create_connector, put_script

PROCESS = (
    "datagrid.addColumn('a', datagrid.DATA_TYPE_STRING); datagrid.addCell('v1'); datagrid.endRow();"
)


async def drafted_action(client: Client, owner: Caller, key: str = "crm") -> str:
    """An action with its auth and process scripts; its guid."""
    created = await create_connector(client, owner, kind="action", key=key)
    await put_script(client, owner, created["guid"], "auth", "auth.authenticationSuccess();")
    await put_script(client, owner, created["guid"], "process", PROCESS)
    guid: str = created["guid"]
    return guid


async def runnable(client: Client, caller: Caller) -> list[tuple[str, str, int | None]]:
    response = await client.get("/api/v1/actions", headers=caller.headers)
    assert response.status == HTTPStatus.OK
    body = await response.json()
    return [(a["guid"], a["scope"], a["version"]) for a in body["items"]]


async def test_publish_and_read_versions(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, outsider: Caller
) -> None:
    guid = await drafted_action(client, owner)
    path = f"/api/v1/connectors/{guid}"
    await problem(
        await client.post(path + "/publish", headers=owner.headers),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    first = await publish(client, admin, guid)
    assert (first["number"], first["created_by"]) == (1, admin.user_id)
    assert [(s["kind"], s["param"]) for s in first["scripts"]] == [
        ("auth", None),
        ("process", None),
    ]
    assert "source" not in str(first["scripts"])
    assert first["definition"]["key"] == "crm"
    connector = await (await client.get(path, headers=owner.headers)).json()
    assert connector["scope"] == "customer"

    await put_script(client, owner, guid, "process", PROCESS.replace("v1", "v2"))
    second = await publish(client, admin, guid)
    assert second["number"] == 2
    response = await client.get(path + "/versions?limit=1", headers=colleague.headers)
    page = await response.json()
    assert [v["number"] for v in page["items"]] == [2]
    response = await client.get(
        path + f"/versions?limit=1&cursor={page['next_cursor']}", headers=colleague.headers
    )
    assert [v["number"] for v in (await response.json())["items"]] == [1]
    assert await (await client.get(path + "/versions/1", headers=owner.headers)).json() == first
    for missing in ("3", "0", "x1", "99999999999"):
        await problem(
            await client.get(path + f"/versions/{missing}", headers=owner.headers),
            HTTPStatus.NOT_FOUND,
            "not_found",
        )


async def test_publish_names_the_missing_scripts(
    client: Client, owner: Caller, admin: Caller
) -> None:
    created = await create_connector(client, owner, kind="action")
    response = await client.post(
        f"/api/v1/connectors/{created['guid']}/publish", headers=admin.headers
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert [e["loc"] for e in body["errors"]] == [["scripts", "process"], ["scripts", "auth"]]
    assert "process" in body["detail"]


async def test_another_customers_action_is_not_found_everywhere(
    client: Client, owner: Caller, admin: Caller, outsider: Caller
) -> None:
    """I2: the version, publish and scope endpoints answer 404 to another customer."""
    guid = await drafted_action(client, owner)
    await publish(client, admin, guid)
    base = f"/api/v1/connectors/{guid}"
    for response in (
        await client.post(base + "/publish", headers=outsider.headers),
        await client.get(base + "/versions", headers=outsider.headers),
        await client.get(base + "/versions/1", headers=outsider.headers),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    for response in (
        await set_scope(client, outsider, guid, "personal"),
        await client.get(f"/api/v1/admin/actions/{guid}/scope-history", headers=outsider.headers),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, "action_not_found")
    assert await runnable(client, outsider) == []


async def test_only_platform_admins_grant_or_revoke_global(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, platform: Caller
) -> None:
    """I3: a member or a customer admin asking for `global` is 403 `scope_not_allowed`."""
    guid = await drafted_action(client, owner)
    await publish(client, admin, guid)
    for caller in (owner, colleague, admin):
        await problem(
            await set_scope(client, caller, guid, "global"),
            HTTPStatus.FORBIDDEN,
            "scope_not_allowed",
        )
    await problem(
        await set_scope(client, owner, guid, "personal"), HTTPStatus.FORBIDDEN, "scope_not_allowed"
    )
    response = await set_scope(client, platform, guid, "global", "every customer needs it")
    assert response.status == HTTPStatus.OK
    assert (await response.json())["scope"] == "global"
    await problem(
        await set_scope(client, admin, guid, "customer"), HTTPStatus.FORBIDDEN, "scope_not_allowed"
    )


async def test_scope_changes_are_audited_and_reversible(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, platform: Caller
) -> None:
    guid = await drafted_action(client, owner)
    await problem(await set_scope(client, admin, guid, "customer"), HTTPStatus.CONFLICT, "conflict")
    await publish(client, admin, guid)
    response = await set_scope(client, admin, guid, "personal", "not ready")
    assert (await response.json())["scope"] == "personal"
    response = await set_scope(client, admin, guid, "customer", "ready after all")
    assert (await response.json()) == {
        "guid": guid,
        "name": "Sample CRM",
        "key": "crm",
        "customer_id": owner.customer_id,
        "scope": "customer",
        "version": 1,
    }
    history_path = f"/api/v1/admin/actions/{guid}/scope-history"
    response = await client.get(history_path, headers=admin.headers)
    body = await response.json()
    assert [(c["from_scope"], c["to_scope"], c["reason"]) for c in body["items"]] == [
        ("personal", "customer", "ready after all"),
        ("customer", "personal", "not ready"),
        ("personal", "customer", "published as version 1"),
    ]
    assert {c["changed_by"] for c in body["items"]} == {admin.user_id}
    assert (await (await client.get(history_path, headers=platform.headers)).json()) == body
    await problem(
        await client.get(history_path, headers=colleague.headers), HTTPStatus.FORBIDDEN, "forbidden"
    )


async def test_a_global_key_clash_is_refused(
    client: Client, owner: Caller, admin: Caller, outsider: Caller, platform: Caller
) -> None:
    ours = await drafted_action(client, owner)
    theirs = await drafted_action(client, outsider)
    await publish(client, admin, ours)
    await publish(client, outsider, theirs)
    assert (await set_scope(client, platform, ours, "global")).status == HTTPStatus.OK
    body = await problem(
        await set_scope(client, platform, theirs, "global"), HTTPStatus.CONFLICT, "conflict"
    )
    assert "crm" in body["detail"]


async def test_the_action_list(
    client: Client,
    owner: Caller,
    colleague: Caller,
    admin: Caller,
    outsider: Caller,
    platform: Caller,
) -> None:
    guid = await drafted_action(client, owner)
    assert await runnable(client, owner) == [(guid, "personal", None)]
    assert await runnable(client, colleague) == []
    await publish(client, admin, guid)
    for caller in (owner, colleague, admin):
        assert await runnable(client, caller) == [(guid, "customer", 1)]
    assert await runnable(client, outsider) == []
    await set_scope(client, platform, guid, "global")
    assert await runnable(client, outsider) == [(guid, "global", 1)]


async def test_a_dev_run_names_the_draft(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner, kind="action", auth={"method": "none"})
    await put_script(client, owner, created["guid"], "process", PROCESS)
    response = await client.post(
        f"/api/v1/connectors/{created['guid']}/runs", headers=owner.headers, json={}
    )
    assert response.status == HTTPStatus.OK, await response.text()
    run = await response.json()
    assert (run["status"], run["version"]) == ("success", None)
    stored = await (await client.get(f"/api/v1/runs/{run['run_id']}", headers=owner.headers)).json()
    assert stored["version"] is None
    listed = await (await client.get("/api/v1/runs", headers=owner.headers)).json()
    assert [(r["run_id"], r["version"]) for r in listed["items"]] == [(run["run_id"], None)]
