"""THREATS Q1-Q7: hostile statements on the query endpoint are refused or stopped.

Each statement gets a clear problem (`sql_refused` 422 or `sql_timeout` 408), no dataset
file changes (every file is hashed before and after), and the next query works.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from pathlib import Path
from typing import Final

from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.gateway.callers import Caller, Client, problem
from tests.gateway.datasets.conftest import SAMPLE_CSV, created, dataset_root, file_hashes, query

REFUSED: Final = (HTTPStatus.UNPROCESSABLE_ENTITY, "sql_refused")
STOPPED: Final = (HTTPStatus.REQUEST_TIMEOUT, "sql_timeout")

# A Python variable a replacement scan would find (it is never read).
secret_python_var = [{"secret": "must not be read"}]


def hostile_statements(other_part: Path, url: str) -> list[tuple[str, set[tuple[HTTPStatus, str]]]]:
    """Every statement with the answers it may get (hostile SQL is the point: S608 is off)."""
    other = str(other_part)
    statements = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "COPY tbl TO '/tmp/gateway-stolen.csv'",
        "COPY (SELECT * FROM tbl) TO '/tmp/gateway-stolen.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '/tmp/gateway-export'",
        f"ATTACH '{other}' AS other (READ_ONLY)",
        f"SELECT * FROM '{other}'",
        f"SELECT * FROM read_duckdb('{other}')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET memory_limit = '64GB'",
        "RESET memory_limit",
        "SET enable_external_access = true",
        "PRAGMA database_list",
        "SELECT 1; SELECT 2",
        "SELECT * FROM tbl; DROP VIEW tbl",
        "SELECT * FROM secret_python_var",
        "SELECT getenv('HOME')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_databases()",
        "SELECT current_setting('memory_limit')",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM (WITH duckdb_databases AS (SELECT 1) SELECT 1), duckdb_databases",
        "SELECT * FROM p0.main.data",
        "CREATE TABLE copied AS SELECT * FROM tbl",
        "INSERT INTO tbl VALUES (1, '1', 1.0, DATE '2024-01-01', true, 'x')",
        "UPDATE tbl SET zip = 'x'",
        "DETACH p0",
        "USE p0",
        "CALL pragma_version()",
        "CHECKPOINT",
        "EXPLAIN ANALYZE SELECT * FROM tbl",
        f"SELECT * FROM read_parquet('{url}')",
        "SELECT * FROM query_table('tbl')",
        "SELECT * FROM query('SELECT 42')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        f"SELECT * FROM parquet_metadata('{other}')",
        "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    ]
    answers: list[tuple[str, set[tuple[HTTPStatus, str]]]] = [(s, {REFUSED}) for s in statements]
    answers += [
        # Stopped by the time limit (or refused at the memory limit, whichever comes first).
        (
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) "
            "SELECT count(*) FROM t",
            {STOPPED, REFUSED},
        ),
        # Small sides, endless product: only the time limit stops it.
        (
            "SELECT count(*) FROM range(3000) a, range(3000) b, range(3000) c, range(3000) d",
            {STOPPED},
        ),
        # A huge side: refused at the memory limit, unless the time limit comes first.
        ("SELECT count(*) FROM range(1000000000) a, range(1000000000) b", {STOPPED, REFUSED}),
    ]
    return answers


async def test_hostile_statements_are_refused_or_stopped(
    client: Client, owner: Caller, aiohttp_server: AiohttpServer
) -> None:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"PAR1")

    upstream = web.Application()
    upstream.router.add_get("/{name}", record)
    server = await aiohttp_server(upstream)
    url = f"http://127.0.0.1:{server.port}/data.parquet"

    mine = await created(client, owner, SAMPLE_CSV, name="mine")
    other = await created(client, owner, SAMPLE_CSV, name="other")
    root = dataset_root(client.app)
    other_part = next((root / owner.customer_id / other["id"]).glob("part-*.duckdb"))
    before = file_hashes(root)
    assert len(before) == 2

    statements = hostile_statements(other_part, url)
    assert len(statements) >= 25
    for sql, allowed in statements:
        response = await query(client, owner, mine["id"], sql)
        answer = (HTTPStatus(response.status), (await response.json(content_type=None))["code"])
        assert answer in allowed, (sql, answer)
        await problem(response, *answer)
        assert file_hashes(root) == before, sql
        after = await query(client, owner, mine["id"], "SELECT count(*) AS n FROM tbl")
        assert after.status == 200, (sql, await after.text())
        assert (await after.json())["rows"] == [[2]]
    assert hits == []
    assert not await asyncio.to_thread(Path("/tmp/gateway-stolen.csv").exists)
    assert not await asyncio.to_thread(Path("/tmp/gateway-export").exists)


async def test_a_refusal_says_what_was_refused(client: Client, owner: Caller) -> None:
    mine = await created(client, owner, SAMPLE_CSV)
    body = await problem(
        await query(client, owner, mine["id"], "SELECT * FROM duckdb_databases()"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "sql_refused",
    )
    assert "duckdb_databases" in body["detail"]
    body = await problem(
        await query(client, owner, mine["id"], "SELECT 1; SELECT 2"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "sql_refused",
    )
    assert body["detail"] == "send exactly one statement, not 2"


async def test_errors_do_not_show_the_data_folder(client: Client, owner: Caller) -> None:
    mine = await created(client, owner, SAMPLE_CSV)
    body = await problem(
        await query(client, owner, mine["id"], "SELECT no_such_column FROM tbl"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "sql_refused",
    )
    assert str(dataset_root(client.app)) not in body["detail"]
    assert "no_such_column" in body["detail"]
