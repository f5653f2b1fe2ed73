"""`sql.*`: a connector's own tables in the metadata store, used by scripts in real workers."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.service import ConnectorService
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService
from runtime.host import Host
from runtime.model import RunResult, RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script
from tests.gateway.connectors.conftest import definition
from writeback.scriptsql import ConnectorSql
from writeback.tables import connector_sql_rows


@dataclass
class World:
    sql: ConnectorSql
    customer_id: str
    connector_id: str
    other_connector_id: str
    other_customer_id: str


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    identity = IdentityService(engine)
    acme = await identity.create_customer("acme")
    globex = await identity.create_customer("globex")
    user = await identity.create_user(acme.id, "ann@acme.test", "Ann", Role.MEMBER)
    ann = Principal(user.id, acme.id, Role.MEMBER)
    connectors = ConnectorService(engine)
    first = await connectors.create_connector(ann, definition(kind="writeback"))
    second = await connectors.create_connector(ann, definition(key="erp", kind="writeback"))
    return World(ConnectorSql(engine, max_bytes=2000), acme.id, first.id, second.id, globex.id)


async def _run(pool: WorkerPool, world: World, script: str, **owner: str) -> RunResult:
    customer_id = owner.get("customer_id", world.customer_id)
    connector_id = owner.get("connector_id", world.connector_id)
    host = Host(sql=world.sql.for_run(customer_id, connector_id))
    result = await run_script(pool, script, host=host)
    assert result.status is RunStatus.SUCCESS, result.error
    return result


def _logs(result: RunResult) -> list[object]:
    return [json.loads(line) for line in result.logs]


async def test_tables_keep_rows_between_runs(pool: WorkerPool, world: World) -> None:
    first = await _run(
        pool,
        world,
        """
        DOMO.log(sql.createTable('sent', [{name: 'id', type: 'LONG'}, {name: 'status'},
                                          {name: 'on', type: 'DATE'}]));
        DOMO.log(sql.createTable('sent', {id: 'LONG', status: 'STRING', on: 'DATE'}));
        DOMO.log(sql.insert('sent', [{id: 1, status: 'ok', on: '2024-01-02'}, {id: 2}]));
        DOMO.log(sql.insert('sent', {id: 3, status: 'ok'}));
        """,
    )
    assert _logs(first) == [True, False, 2, 1]
    second = await _run(
        pool,
        world,
        """
        DOMO.log(sql.select('sent', {status: 'ok'}));
        DOMO.log(sql.update('sent', {status: 'retry'}, {id: 2}));
        DOMO.log(sql.delete('sent', {id: 1}));
        DOMO.log(sql.export('sent'));
        DOMO.log(sql.delete('sent'));
        DOMO.log(sql.select('sent'));
        """,
    )
    assert _logs(second) == [
        [{"id": 1, "status": "ok", "on": "2024-01-02"}, {"id": 3, "status": "ok", "on": None}],
        1,
        1,
        {"columns": ["id", "status", "on"], "rows": [[2, "retry", None], [3, "ok", None]]},
        2,
        [],
    ]


async def test_another_connector_or_customer_sees_nothing(pool: WorkerPool, world: World) -> None:
    await _run(pool, world, "sql.createTable('t', ['a']); sql.insert('t', {a: 'mine'});")
    script = "try { sql.select('t'); } catch (e) { DOMO.log(e.message); }"
    others = [
        {"connector_id": world.other_connector_id},
        {"customer_id": world.other_customer_id},
    ]
    for owner in others:
        result = await _run(pool, world, script, **owner)
        assert result.logs == ["no table 't': create it with sql.createTable first"]


async def test_bad_calls_are_refused_and_write_nothing(
    pool: WorkerPool, world: World, engine: AsyncEngine
) -> None:
    result = await _run(
        pool,
        world,
        """
        sql.createTable('t', {n: 'LONG', s: 'STRING'});
        for (const call of [
          () => sql.insert('t', {n: 1.5}),
          () => sql.insert('t', [{n: 1}, {x: 1}]),
          () => sql.createTable('t', {n: 'DOUBLE'}),
          () => sql.createTable('bad;name', ['a']),
          () => sql.createTable('u', {a: 'BLOB'}),
          () => sql.select('t', {nope: 1}),
          () => sql.insert('t', {n: 1, s: 'x'.repeat(3000)}),
        ]) {
          try { call(); } catch (e) { DOMO.log(e.message); }
        }
        """,
    )
    assert result.logs == [
        "'t'.n is LONG, not 1.5",
        "'t' has no column 'x'",
        "the table 't' exists with other columns",
        "the table 'bad;name' is not a name (letters, digits, _ and spaces, at most 64 characters)",
        "the column type 'BLOB' is none of STRING, LONG, DOUBLE, BOOLEAN, DATE, DATETIME",
        "'t' has no column 'nope'",
        "the connector's sql tables would take 3014 bytes, more than the 2000 allowed; "
        "nothing was written",
    ]
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(connector_sql_rows))
    assert count == 0


async def test_a_run_without_sql_gets_a_clear_error(pool: WorkerPool) -> None:
    result = await run_script(pool, "sql.select('t');")
    assert result.error is not None
    assert result.error.message == "sql.* is not available to this run"
