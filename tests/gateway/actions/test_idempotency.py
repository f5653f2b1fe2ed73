"""`Idempotency-Key` on the process endpoint: replay, reuse, concurrency, release, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from http import HTTPStatus

from sqlalchemy import select, update

from actions.tables import idempotency_keys
from gateway.keys import ACTIONS, ENGINE
from gateway.store.tables import utcnow
from tests.gateway.actions.conftest import ECHO_PROCESS, Echo, make_action, process
from tests.gateway.apps.conftest import make_account
from tests.gateway.callers import Caller, Client, problem


async def _action(client: Client, owner: Caller, echo: Echo) -> tuple[str, str]:
    guid = await make_action(client, owner, ECHO_PROCESS.format(host=echo.host), hosts=(echo.host,))
    account = await make_account(client, owner, "crm", "mine")
    return guid, account.id


async def test_a_repeat_replays_without_running(client: Client, echo: Echo, owner: Caller) -> None:
    guid, account = await _action(client, owner, echo)
    key = {"Idempotency-Key": "order-42"}
    first = await process(client, owner, guid, {"a": 1}, account=account, headers=key)
    assert first.status == HTTPStatus.OK
    assert "Idempotency-Replayed" not in first.headers
    again = await process(client, owner, guid, {"a": 1}, account=account, headers=key)
    assert again.status == HTTPStatus.OK
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.headers["X-Run-Id"] == first.headers["X-Run-Id"]
    assert await again.read() == await first.read()
    assert len(echo.keys) == 1
    # Another body, query or path with the key: refused, nothing run.
    for response in (
        await process(client, owner, guid, {"a": 2}, account=account, headers=key),
        await process(
            client, owner, guid, {"a": 1}, account=account, scope="personal", headers=key
        ),
    ):
        body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "idempotency_key_reused")
        assert "another request" in body["detail"]
    assert len(echo.keys) == 1
    # Keys are the caller's and the action's: the same key elsewhere runs.
    other = await process(
        client, owner, guid, {"a": 1}, account=account, headers={"Idempotency-Key": "order-43"}
    )
    assert other.headers["X-Run-Id"] != first.headers["X-Run-Id"]
    assert len(echo.keys) == 2


async def test_a_failed_run_is_replayed_too(client: Client, owner: Caller) -> None:
    guid = await make_action(client, owner, "datagrid.error('E1', 'no');", auth={"method": "none"})
    key = {"Idempotency-Key": "k"}
    first = await process(client, owner, guid, headers=key)
    body = await problem(first, HTTPStatus.UNPROCESSABLE_ENTITY, "script_failed")
    again = await process(client, owner, guid, headers=key)
    assert await problem(again, HTTPStatus.UNPROCESSABLE_ENTITY, "script_failed") == body
    assert again.headers["X-Run-Id"] == body["run_id"]


async def test_concurrent_requests_with_one_key_run_once(
    client: Client, echo: Echo, owner: Caller
) -> None:
    guid, account = await _action(client, owner, echo)
    key = {"Idempotency-Key": "together"}
    responses = await asyncio.gather(
        *(process(client, owner, guid, {"n": 1}, account=account, headers=key) for _ in range(4))
    )
    assert [r.status for r in responses] == [HTTPStatus.OK] * 4
    assert len({r.headers["X-Run-Id"] for r in responses}) == 1
    assert sorted(r.headers.get("Idempotency-Replayed", "") for r in responses) == [
        "",
        "true",
        "true",
        "true",
    ]
    assert len(echo.keys) == 1


async def test_a_refusal_before_the_run_frees_the_key(
    client: Client, echo: Echo, owner: Caller, colleague: Caller
) -> None:
    guid, account = await _action(client, owner, echo)
    theirs = await make_account(client, colleague, "crm", "theirs")
    key = {"Idempotency-Key": "retry-me"}
    await problem(
        await process(client, owner, guid, account=theirs.id, headers=key),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    async with client.app[ENGINE].connect() as connection:
        assert (await connection.execute(select(idempotency_keys))).all() == []
    # The same key with a corrected request runs.
    response = await process(client, owner, guid, account=account, headers=key)
    assert response.status == HTTPStatus.OK
    assert len(echo.keys) == 1


async def test_bad_keys_are_refused(client: Client, echo: Echo, owner: Caller) -> None:
    guid, account = await _action(client, owner, echo)
    for bad in ("", "with space", "x" * 256, "caf\u00e9"):
        response = await client.post(
            f"/domo/actions/v1/{guid}/process",
            params={"account": account},
            json={},
            headers={**owner.headers, "Idempotency-Key": bad.encode().decode("latin-1")},
        )
        await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert echo.keys == []


async def test_a_dead_holder_is_taken_over_and_old_keys_expire(
    client: Client, echo: Echo, owner: Caller
) -> None:
    guid, account = await _action(client, owner, echo)
    key = {"Idempotency-Key": "stuck"}
    await process(client, owner, guid, account=account, headers=key)
    engine = client.app[ENGINE]
    # As if its holder had died while running: pending, its lease over.
    async with engine.begin() as connection:
        await connection.execute(
            update(idempotency_keys).values(
                status=None,
                claim_lease_owner="gone",
                claim_lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    taken = await process(client, owner, guid, account=account, headers=key)
    assert taken.status == HTTPStatus.OK
    assert "Idempotency-Replayed" not in taken.headers
    assert len(echo.keys) == 2
    # A day later the key is purged and runs again.
    assert await client.app[ACTIONS].idempotency.purge(utcnow()) == 0
    assert await client.app[ACTIONS].idempotency.purge(utcnow() + timedelta(hours=24)) == 1
    fresh = await process(client, owner, guid, account=account, headers=key)
    assert "Idempotency-Replayed" not in fresh.headers
    assert len(echo.keys) == 3
