"""Who runs an action in which scope, with which account (SPEC 5; issue 11 section 6)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

import pytest

from tests.gateway.actions.conftest import (
    ECHO_PROCESS,
    Echo,
    make_action,
    map_alias,
    place_app,
    process,
    publish,
    run_record,
    set_scope,
)
from tests.gateway.apps.conftest import make_account
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import put_script

CALLERS: Final = ("owner", "colleague", "admin", "outsider", "platform")
OK, FORBIDDEN, NOT_FOUND = HTTPStatus.OK, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND
# Per scope, per caller: the status with an alias and with an account id (the same).
EXPECTED: Final = {
    "personal": dict(zip(CALLERS, (OK, FORBIDDEN, FORBIDDEN, NOT_FOUND, NOT_FOUND), strict=True)),
    "customer": dict(zip(CALLERS, (OK, OK, OK, NOT_FOUND, NOT_FOUND), strict=True)),
    "global": dict(zip(CALLERS, (OK, OK, OK, OK, OK), strict=True)),
}
CODES: Final = {FORBIDDEN: "scope_not_allowed", NOT_FOUND: "action_not_found"}


@pytest.mark.parametrize("scope", ["personal", "customer", "global"])
async def test_the_scope_and_caller_matrix(
    client: Client,
    echo: Echo,
    scope: str,
    owner: Caller,
    colleague: Caller,
    admin: Caller,
    outsider: Caller,
    platform: Caller,
) -> None:
    """Every caller uses its own account of the action's key, by alias and by id."""
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    if scope != "personal":
        await publish(client, admin, guid)
    if scope == "global":
        assert (await set_scope(client, platform, guid, "global")).status == OK
    callers = dict(zip(CALLERS, (owner, colleague, admin, outsider, platform), strict=True))
    instances: dict[str, str] = {}
    for name, caller in callers.items():
        account = await make_account(client, caller, "crm", name)
        if caller.customer_id == owner.customer_id or scope == "global":
            # Another customer's app may name `crm` only once the action is global.
            app_id, (instance,) = await place_app(client, caller, {"sales": "crm"})
            await map_alias(client, caller, app_id, instance, "sales", account.id)
            instances[name] = instance
        for by in ("alias", "account"):
            instance = instances.get(name, guid)
            response = await (
                process(client, caller, guid, {"n": name}, instance=instance, account=account.id)
                if by == "account"
                else process(
                    client, caller, guid, {"n": name}, instance=instance, accountAlias="sales"
                )
            )
            expected = EXPECTED[scope][name]
            if expected is not OK:
                await problem(response, expected, CODES[expected])
                continue
            assert response.status == OK, (name, by, await response.text())
            assert (await response.json())["parameters"] == {"n": name}
            assert echo.keys[-1] == "k-" + name, "each caller runs with its own account"
            record = await run_record(client, caller, response)
            assert record["kind"] == "action"
            assert record["scope"] == scope
            assert record["account_resolution"]["source"] == by
            assert record["account_resolution"]["account_id"] == account.id
    assert len(echo.keys) == 2 * sum(s is OK for s in EXPECTED[scope].values())


async def test_scope_may_not_exceed_the_actions(
    client: Client, echo: Echo, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    account = await make_account(client, owner, "crm", "owner")
    for wanted in ("customer", "global"):
        body = await problem(
            await process(client, owner, guid, account=account.id, scope=wanted),
            FORBIDDEN,
            "scope_not_allowed",
        )
        assert f"'{wanted}' exceeds the action's scope 'personal'" in body["detail"]
    await publish(client, admin, guid)
    body = await problem(
        await process(client, owner, guid, account=account.id, scope="global"),
        FORBIDDEN,
        "scope_not_allowed",
    )
    assert "'global' exceeds the action's scope 'customer'" in body["detail"]
    theirs = await make_account(client, colleague, "crm", "colleague")
    body = await problem(
        await process(client, colleague, guid, account=theirs.id, scope="personal"),
        FORBIDDEN,
        "scope_not_allowed",
    )
    assert "owner" in body["detail"]
    await problem(
        await process(client, owner, guid, account=account.id, scope="everyone"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert echo.keys == []


async def test_the_owner_runs_the_draft_in_the_personal_scope(
    client: Client, echo: Echo, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    """SPEC 4.3: the owner's personal runs use the draft; everyone else the published version."""
    cell = "datagrid.addColumn('v', datagrid.DATA_TYPE_STRING); datagrid.addCell('{v}');"
    guid = await make_action(client, owner, cell.format(v="one") + "datagrid.endRow();")
    await publish(client, admin, guid)
    # The draft moves on after publishing.
    await put_script(client, owner, guid, "process", cell.format(v="two") + "datagrid.endRow();")
    mine = await make_account(client, owner, "crm", "owner")
    theirs = await make_account(client, colleague, "crm", "colleague")
    published = await process(client, owner, guid, account=mine.id)
    draft = await process(client, owner, guid, account=mine.id, scope="personal")
    other = await process(client, colleague, guid, account=theirs.id)
    assert [await r.json() for r in (published, draft, other)] == ["one", "two", "one"]
    versions = [
        (record["version"], record["scope"])
        for record in [
            await run_record(client, owner, published),
            await run_record(client, owner, draft),
            await run_record(client, colleague, other),
        ]
    ]
    assert versions == [(1, "customer"), (None, "personal"), (1, "customer")]
