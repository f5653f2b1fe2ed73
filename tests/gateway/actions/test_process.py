"""The process endpoint's accounts, parameters, answers and problems (SPEC 4.1, 4.3, 5)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from sqlalchemy import update

from gateway.accounts.tables import accounts
from gateway.keys import ENGINE
from tests.gateway.actions.conftest import (
    ECHO_PROCESS,
    Echo,
    make_action,
    map_alias,
    place_app,
    process,
    publish,
    run_record,
)
from tests.gateway.apps.conftest import make_account
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import put_script

UNPROCESSABLE: Final = HTTPStatus.UNPROCESSABLE_ENTITY
PARAMETERS: Final = [
    {"name": "Opportunity ID", "type": "string", "required": True},
    {"name": "Amount", "type": "number"},
]


async def test_aliases_resolve_per_instance_and_per_user(
    client: Client, echo: Echo, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    await publish(client, admin, guid)
    app_id, (east, west) = await place_app(client, owner, {"sales": "crm"}, instances=2)
    accounts = {}
    for caller, name in ((owner, "o"), (colleague, "c")):
        first = await make_account(client, caller, "crm", name + "1")
        second = await make_account(client, caller, "crm", name + "2")
        await map_alias(client, caller, app_id, east, "sales", first.id)
        await map_alias(client, caller, app_id, west, "sales", second.id)
        accounts[caller.user_id] = (first.id, second.id)
    for caller, name in ((owner, "o"), (colleague, "c")):
        for instance, index in ((east, 1), (west, 2)):
            response = await process(client, caller, guid, instance=instance, accountAlias="sales")
            assert response.status == HTTPStatus.OK, await response.text()
            assert echo.keys[-1] == f"k-{name}{index}"
            record = await run_record(client, caller, response)
            assert record["account_resolution"] == {
                "source": "alias",
                "alias": "sales",
                "instance_id": instance,
                "account_id": accounts[caller.user_id][index - 1],
            }
            assert record["version"] == 1
            assert set(record["timings"]) == {"resolution_ms", "run_ms"}
    # An alias the caller has not mapped, or one without an instance.
    body = await problem(
        await process(client, admin, guid, instance=east, accountAlias="sales"),
        UNPROCESSABLE,
        "alias_not_mapped",
    )
    assert "'sales'" in body["detail"]
    body = await problem(
        await process(client, owner, guid, accountAlias="sales"), UNPROCESSABLE, "alias_not_mapped"
    )
    assert "app instance" in body["detail"]
    assert len(echo.keys) == 4


async def test_every_id_of_another_customer_is_not_found(
    client: Client, echo: Echo, owner: Caller, admin: Caller, outsider: Caller
) -> None:
    ours = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    await publish(client, admin, ours)
    theirs = await make_action(
        client, outsider, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,)
    )
    our_account = await make_account(client, owner, "crm", "ours")
    their_account = await make_account(client, outsider, "crm", "theirs")
    app_id, (our_instance,) = await place_app(client, owner, {"sales": "crm"})
    await map_alias(client, owner, app_id, our_instance, "sales", our_account.id)
    their_app, (their_instance,) = await place_app(client, outsider, {"sales": "crm"})
    await map_alias(client, outsider, their_app, their_instance, "sales", their_account.id)
    # Their action, our action, our account, our instance: none exists for the other side.
    for response, code in (
        (await process(client, owner, theirs, account=our_account.id), "action_not_found"),
        (await process(client, outsider, ours, account=their_account.id), "action_not_found"),
        (await process(client, outsider, theirs, account=our_account.id), "not_found"),
        (
            await process(client, outsider, theirs, instance=our_instance, accountAlias="sales"),
            "not_found",
        ),
        (
            await process(client, owner, ours, instance=their_instance, accountAlias="sales"),
            "not_found",
        ),
    ):
        await problem(response, HTTPStatus.NOT_FOUND, code)
    assert echo.keys == []


async def test_the_accounts_own_rules(
    client: Client, echo: Echo, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    await publish(client, admin, guid)
    theirs = await make_account(client, colleague, "crm", "theirs")
    other_provider = await make_account(client, owner, "erp", "erp")
    await problem(
        await process(client, owner, guid, account=theirs.id),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    body = await problem(
        await process(client, owner, guid, account=other_provider.id),
        UNPROCESSABLE,
        "provider_mismatch",
    )
    assert "'erp'" in body["detail"]
    assert "'crm'" in body["detail"]
    await problem(
        await process(client, owner, guid, account="01a2346e-0000-7000-8000-000000000000"),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    mine = await make_account(client, owner, "crm", "mine")
    body = await problem(
        await process(client, owner, guid, account=mine.id, accountAlias="sales"),
        UNPROCESSABLE,
        "validation_failed",
    )
    assert "not both" in body["detail"]
    body = await problem(await process(client, owner, guid), UNPROCESSABLE, "validation_failed")
    assert "'apikey'" in body["detail"]
    assert echo.keys == []


async def test_an_alias_of_another_provider_is_a_mismatch(
    client: Client, echo: Echo, owner: Caller, admin: Caller
) -> None:
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    await make_action(client, owner, "datagrid.addColumn('a', 'STRING');", key="erp")
    await publish(client, admin, guid)
    app_id, (instance,) = await place_app(client, owner, {"books": "erp"})
    books = await make_account(client, owner, "erp", "books")
    await map_alias(client, owner, app_id, instance, "books", books.id)
    body = await problem(
        await process(client, owner, guid, instance=instance, accountAlias="books"),
        UNPROCESSABLE,
        "provider_mismatch",
    )
    assert (
        body["detail"] == "alias 'books' maps to an account of 'erp'; the action needs one of 'crm'"
    )


async def test_an_action_without_authentication_runs_without_account(
    client: Client, owner: Caller, admin: Caller
) -> None:
    cell = "datagrid.addColumn('a', 'STRING'); datagrid.addCell('plain text'); datagrid.endRow();"
    guid = await make_action(client, owner, cell, auth={"method": "none"})
    await publish(client, admin, guid)
    response = await process(client, owner, guid)
    assert response.status == HTTPStatus.OK, await response.text()
    assert await response.json() == "plain text"
    record = await run_record(client, owner, response)
    assert record["account_resolution"] == {
        "source": "none",
        "alias": None,
        "instance_id": None,
        "account_id": None,
    }


async def test_parameters_are_checked_and_undeclared_ones_pass(
    client: Client, echo: Echo, owner: Caller, admin: Caller
) -> None:
    guid = await make_action(
        client,
        owner,
        ECHO_PROCESS.format(host=echo.host),
        hosts=(echo.host,),
        parameters=PARAMETERS,
    )
    await publish(client, admin, guid)
    account = (await make_account(client, owner, "crm", "mine")).id
    body = await problem(
        await process(client, owner, guid, {"Amount": "lots"}, account=account),
        UNPROCESSABLE,
        "invalid_parameters",
    )
    assert sorted(e["loc"][-1] for e in body["errors"]) == ["Amount", "Opportunity ID"]
    assert "'Opportunity ID' is required" in body["detail"]
    for not_an_object in ([1, 2], "text", 3):
        await problem(
            await process(client, owner, guid, not_an_object, account=account),
            UNPROCESSABLE,
            "invalid_parameters",
        )
    assert echo.keys == []
    sent = {"Opportunity ID": "006A", "Amount": 12.5, "note": {"free": True}}
    response = await process(client, owner, guid, sent, account=account)
    assert response.status == HTTPStatus.OK, await response.text()
    assert (await response.json())["parameters"] == sent
    # An empty body is `{}`: the required parameter is missing.
    response = await client.post(
        f"/domo/actions/v1/{guid}/process", params={"account": account}, headers=owner.headers
    )
    await problem(response, UNPROCESSABLE, "invalid_parameters")


async def test_run_failures_are_problems_with_the_run(
    client: Client, echo: Echo, owner: Caller, admin: Caller
) -> None:
    """SPEC 4.3: script_failed 422, egress_refused 422, upstream_unavailable 502."""
    account = (await make_account(client, owner, "crm", "mine")).id
    cases = (
        ("datagrid.error(4711, 'Stage unknown');", UNPROCESSABLE, "script_failed", 4711),
        ("throw new Error('no luck');", UNPROCESSABLE, "script_failed", "script_exception"),
        (
            "httprequest.get('http://elsewhere.example/');",
            UNPROCESSABLE,
            "egress_refused",
            "egress_refused",
        ),
        (
            f"httprequest.get('http://127.0.0.1:{echo.port}/echo'.replace('{echo.port}', '1'));",
            HTTPStatus.BAD_GATEWAY,
            "upstream_unavailable",
            "upstream_unreachable",
        ),
    )
    guid = await make_action(client, owner, "var later;", hosts=(echo.host, "127.0.0.1:1"))
    for source, status, code, error_code in cases:
        await put_script(client, owner, guid, "process", source)
        response = await process(client, owner, guid, account=account)
        body = await problem(response, status, code)
        assert body["run_id"] == response.headers["X-Run-Id"]
        assert body["error"]["code"] == error_code
        record = await run_record(client, owner, response)
        assert record["kind"] == "action"
        whole = await process(
            client,
            owner,
            guid,
            account=account,
            headers={"Accept": "application/vnd.gateway.run+json"},
        )
        assert whole.status == status
        assert whole.content_type == "application/vnd.gateway.run+json"
        document = await whole.json(content_type=None)
        assert document["run_id"] == whole.headers["X-Run-Id"]
        assert document["error"]["code"] == error_code
    body = await problem(
        await process(client, owner, guid, account=account),
        HTTPStatus.BAD_GATEWAY,
        "upstream_unavailable",
    )
    assert "Stage unknown" not in body["detail"]


async def test_the_whole_run_on_request(client: Client, owner: Caller, admin: Caller) -> None:
    source = (
        "DOMO.log('hello'); datagrid.addColumn('a', 'STRING'); datagrid.addColumn('b', 'LONG');"
        "datagrid.addCell('{\"x\": 1}'); datagrid.addCell(2); datagrid.endRow();"
    )
    guid = await make_action(client, owner, source, auth={"method": "none"})
    first = await process(client, owner, guid)
    assert first.status == HTTPStatus.OK
    assert await first.json() == {"x": 1}
    response = await process(
        client, owner, guid, headers={"Accept": "application/vnd.gateway.run+json"}
    )
    assert response.status == HTTPStatus.OK
    document = await response.json(content_type="application/vnd.gateway.run+json")
    assert document["run_id"] == response.headers["X-Run-Id"]
    assert (document["status"], document["rows"], document["logs"]) == (
        "success",
        [['{"x": 1}', 2]],
        ["hello"],
    )
    assert [c["name"] for c in document["columns"]] == ["a", "b"]
    assert (document["error"], document["version"]) == (None, None)
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_runs_total{kind="action",status="success"} 2.0' in metrics
    empty = await make_action(
        client, owner, "var nothing = 1;", key="empty", auth={"method": "none"}
    )
    response = await process(client, owner, empty)
    assert response.status == HTTPStatus.OK
    assert await response.json() is None


async def test_the_deadline_is_504_and_a_revoked_grant_409(
    client: Client, owner: Caller, admin: Caller
) -> None:
    guid = await make_action(
        client, owner, "while (true) {}", auth={"method": "none"}, limits={"wall_time_s": 0.5}
    )
    response = await process(client, owner, guid)
    body = await problem(response, HTTPStatus.GATEWAY_TIMEOUT, "deadline_exceeded")
    assert body["run_id"] == response.headers["X-Run-Id"]
    assert body["error"]["code"] == "timeout"
    account = await make_account(client, owner, "crm", "mine")
    await put_script(client, owner, guid, "process", "datagrid.addColumn('a', 'STRING');")
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(accounts).where(accounts.c.id == account.id).values(status="needs_reauth")
        )
    await problem(
        await process(client, owner, guid, account=account.id),
        HTTPStatus.CONFLICT,
        "account_needs_reauth",
    )
