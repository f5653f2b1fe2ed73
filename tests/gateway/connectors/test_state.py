"""`DOMO.getState/setState` in the service's runs: stored per connector and account (SPEC 3.2).

The store on SQLite and PostgreSQL (tenancy, the 1 MiB cap, cascades, sealing, rotation),
then dev runs over HTTP with real workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.service import AccountService, Provider
from gateway.accounts.vault import SecretVault, rotate_secrets
from gateway.connectors.service import ConnectorService
from gateway.connectors.state import STATE_CAP, RunOnlyState, ScriptStates
from gateway.crypto import DecryptionError, KeyRing, new_key_entry
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService
from gateway.keys import ENGINE
from gateway.store.tables import script_state
from runtime.host import HostCallError
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, definition, put_script

KEY = new_key_entry()
CANARY = "state-canary-Zt8Qp2"
CRM = Provider("crm", "basic")


async def _accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


@dataclass
class World:
    states: ScriptStates
    accounts: AccountService
    connectors: ConnectorService
    ann: Principal
    stranger: Principal
    connector_id: str
    connector_guid: str
    other_connector_id: str
    account_id: str
    other_account_id: str


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    identity = IdentityService(engine)
    acme = await identity.create_customer("acme")
    globex = await identity.create_customer("globex")
    ann_user = await identity.create_user(acme.id, "ann@acme.test", "Ann", Role.MEMBER)
    gus_user = await identity.create_user(globex.id, "gus@globex.test", "Gus", Role.ADMIN)
    ann = Principal(ann_user.id, acme.id, Role.MEMBER)
    ring = KeyRing([KEY])
    accounts = AccountService(engine, SecretVault(ring))
    connectors = ConnectorService(engine)
    crm = await connectors.create_connector(ann, definition())
    other = await connectors.create_connector(ann, definition(key="erp"))
    credentials = {"username": "ann", "password": "pw"}
    first = await accounts.create(ann, CRM, "first", credentials, _accept)
    second = await accounts.create(ann, CRM, "second", credentials, _accept)
    return World(
        ScriptStates(engine, ring),
        accounts,
        connectors,
        ann,
        Principal(gus_user.id, globex.id, Role.ADMIN),
        crm.id,
        crm.guid,
        other.id,
        first.id,
        second.id,
    )


async def _rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(script_state))).all())


async def test_values_round_trip_as_json_and_null_removes_them(world: World) -> None:
    state = world.states.for_run(world.ann.customer_id, world.connector_id, world.account_id)
    assert await state.get("token") is None
    for value in ("abc", "", 42, 1.5, True, ["a", 1], {"n": {"m": None}}):
        await state.set("token", value)
        assert await state.get("token") == value
    await state.set("token", None)
    assert await state.get("token") is None
    await state.set("é-ключ", "ünïcode ✓")
    again = world.states.for_run(world.ann.customer_id, world.connector_id, world.account_id)
    assert await again.get("é-ключ") == "ünïcode ✓"


async def test_each_connector_account_and_customer_has_its_own_state(world: World) -> None:
    acme, globex = world.ann.customer_id, world.stranger.customer_id
    owners = [
        (acme, world.connector_id, world.account_id),
        (acme, world.connector_id, world.other_account_id),
        (acme, world.connector_id, None),
        (acme, world.other_connector_id, world.account_id),
        # Another customer's runs of the same (global) connector keep rows of their own.
        (globex, world.connector_id, None),
    ]
    for number, owner in enumerate(owners):
        await world.states.for_run(*owner).set("k", f"value {number}")
    for number, owner in enumerate(owners):
        assert await world.states.for_run(*owner).get("k") == f"value {number}"


async def test_the_cap_is_one_mib_per_connector_and_account_and_nothing_is_written_past_it(
    world: World, engine: AsyncEngine
) -> None:
    state = world.states.for_run(world.ann.customer_id, world.connector_id, world.account_id)
    big = "x" * (STATE_CAP - 100)  # with the key and the JSON quotes: 1 MiB - 95 bytes
    await state.set("big", big)
    await state.set("big", big)  # replacing a key does not count it twice
    await state.set("small", "y" * 80)
    with pytest.raises(HostCallError) as refused:
        await state.set("more", "z" * 20)
    assert refused.value.code == "state_too_large"
    assert "more than the 1048576 allowed; nothing was written" in refused.value.message
    with pytest.raises(HostCallError, match="1048576"):
        await state.set("small", "y" * 200)
    assert (await state.get("more"), await state.get("small")) == (None, "y" * 80)
    with pytest.raises(HostCallError, match="state key has at most 256"):
        await state.set("k" * 257, "v")
    # Another account of the same connector has a cap of its own.
    other = world.states.for_run(world.ann.customer_id, world.connector_id, world.other_account_id)
    await other.set("big", big)
    assert len(await _rows(engine)) == 3


async def test_run_only_state_has_the_same_rules_and_keeps_nothing(
    world: World, engine: AsyncEngine
) -> None:
    state = RunOnlyState()
    await state.set("k", {"a": 1})
    assert await state.get("k") == {"a": 1}
    await state.set("big", "x" * (STATE_CAP - 100))
    with pytest.raises(HostCallError, match="nothing was written"):
        await state.set("more", "z" * 100)
    assert await RunOnlyState().get("k") is None
    assert await _rows(engine) == []


async def test_state_goes_with_its_account_and_its_connector(
    world: World, engine: AsyncEngine
) -> None:
    acme = world.ann.customer_id
    await world.states.for_run(acme, world.connector_id, world.account_id).set("k", "1")
    await world.states.for_run(acme, world.connector_id, world.other_account_id).set("k", "2")
    await world.states.for_run(acme, world.connector_id, None).set("k", "3")
    await world.states.for_run(acme, world.other_connector_id, world.account_id).set("k", "4")
    await world.accounts.delete(world.ann, world.account_id)
    assert sorted(row.account_ref for row in await _rows(engine)) == sorted(
        ["", world.other_account_id]
    )
    await world.connectors.delete_connector(world.ann, world.connector_guid)
    assert await _rows(engine) == []


async def test_values_are_sealed_and_bound_to_their_row(world: World, engine: AsyncEngine) -> None:
    acme = world.ann.customer_id
    await world.states.for_run(acme, world.connector_id, world.account_id).set("token", CANARY)
    await world.states.for_run(acme, world.connector_id, None).set("token", "other")
    rows = await _rows(engine)
    assert CANARY not in str([tuple(row) for row in rows])
    assert all(CANARY.encode() not in row.ciphertext for row in rows)
    # A ciphertext moved to the connector's own row (or another key) does not open there.
    sealed = next(row for row in rows if row.account_ref == world.account_id)
    async with engine.begin() as connection:
        await connection.execute(
            update(script_state)
            .where(script_state.c.account_ref == "")
            .values(key_id=sealed.key_id, ciphertext=sealed.ciphertext)
        )
    with pytest.raises(DecryptionError):
        await world.states.for_run(acme, world.connector_id, None).get("token")


async def test_rotation_reseals_the_state(world: World, engine: AsyncEngine) -> None:
    acme = world.ann.customer_id
    await world.states.for_run(acme, world.connector_id, world.account_id).set("token", CANARY)
    newer = new_key_entry()
    report = await rotate_secrets(engine, KeyRing([newer, KEY]))
    assert report.resealed == 3  # two accounts' passwords, one state value
    rotated = ScriptStates(engine, KeyRing([newer]))  # the old key is retired
    assert await rotated.for_run(acme, world.connector_id, world.account_id).get("token") == (
        CANARY
    )


# --- dev runs over HTTP ----------------------------------------------------------------

COUNTER = """
var n = Number(DOMO.getState('count') || '0') + 1;
DOMO.setState('count', String(n));
DOMO.setState('token', 'tok-' + metadata.account.username);
DOMO.log(metadata.account.username + ' ' + n);
"""


async def _counter(client: Client, owner: Caller) -> str:
    created = await create_connector(client, owner, allowed_hosts=[])
    await put_script(client, owner, created["guid"], "auth", "auth.authenticationSuccess();")
    await put_script(client, owner, created["guid"], "process", COUNTER)
    guid: str = created["guid"]
    return guid


async def _account(client: Client, owner: Caller, username: str) -> str:
    response = await client.post(
        "/api/v1/accounts",
        headers=owner.headers,
        json={
            "connector_key": "samplecrm",
            "name": username,
            "credentials": {"username": username, "password": "pw"},
        },
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    account_id: str = (await response.json())["id"]
    return account_id


async def _logs(client: Client, owner: Caller, guid: str, **body: Any) -> list[str]:
    response = await client.post(
        f"/api/v1/connectors/{guid}/runs",
        headers=owner.headers,
        json={"mode": "process", "report": "Opportunities", **body},
    )
    assert response.status == HTTPStatus.OK, await response.text()
    run = await response.json()
    assert run["status"] == "success", run
    logs: list[str] = run["logs"]
    return logs


async def test_dev_runs_keep_state_per_account_between_runs(client: Client, owner: Caller) -> None:
    guid = await _counter(client, owner)
    ann, bob = await _account(client, owner, "ann"), await _account(client, owner, "bob")
    assert await _logs(client, owner, guid, account_id=ann) == ["ann 1"]
    assert await _logs(client, owner, guid, account_id=ann) == ["ann 2"]
    assert await _logs(client, owner, guid, account_id=bob) == ["bob 1"]
    assert await _logs(client, owner, guid, account_id=ann) == ["ann 3"]
    async with client.app[ENGINE].connect() as connection:
        rows = (await connection.execute(select(script_state))).all()
    assert sorted((row.account_ref, row.name) for row in rows) == sorted(
        [(ann, "count"), (ann, "token"), (bob, "count"), (bob, "token")]
    )
    assert "tok-ann" not in str([tuple(row) for row in rows])


async def test_credentials_that_are_not_stored_leave_no_state(
    client: Client, owner: Caller
) -> None:
    guid = await _counter(client, owner)
    credentials = {"username": "cy", "password": "pw"}
    assert await _logs(client, owner, guid, credentials=credentials) == ["cy 1"]
    assert await _logs(client, owner, guid, credentials=credentials) == ["cy 1"]
    async with client.app[ENGINE].connect() as connection:
        assert (await connection.execute(select(script_state))).all() == []


async def test_a_dev_run_past_the_cap_fails_clearly(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner, allowed_hosts=[], auth={"method": "none"})
    source = "DOMO.setState('a', 'x'.repeat(1048576));"
    await put_script(client, owner, created["guid"], "process", source)
    response = await client.post(
        f"/api/v1/connectors/{created['guid']}/runs",
        headers=owner.headers,
        json={"mode": "process", "report": "Opportunities"},
    )
    run = await response.json()
    assert (run["status"], run["error"]["code"]) == ("error", "state_too_large")
    assert "nothing was written" in run["error"]["message"]
