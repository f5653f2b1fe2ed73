"""Scripts reading datasets (`DOMO.listDatasets/getDataset/queryData`, pages) in real workers.

The datasets are real (the dataset service on the test database, DuckDB part files), the
SQL runs in the sandbox, and the scripts run in the real worker pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.identity.principal import Principal, Role
from runtime.host import Host
from runtime.model import JsonValue, RunResult, RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script
from tests.dbfixtures import make_customer, make_user
from tests.writeback.test_datasets import csv
from writeback.datasets.sandbox import QueryCursor, SandboxLimits, SqlSandbox, SqlTable
from writeback.datasets.service import DatasetService, WriteMode
from writeback.datasets.storage import DatasetFiles
from writeback.scriptdata import CustomerDatasets, ScriptDatasets

PEOPLE = 'id,First Name,amount\n1,Ann,10.5\n2,Bob,20\n3,"Cy, Jr",30\n'


class CountingSandbox(SqlSandbox):
    """A sandbox that counts the queries it executes."""

    executed = 0

    @asynccontextmanager
    async def cursor(
        self, table: SqlTable, sql: str, parameters: Sequence[object] | None = None
    ) -> AsyncIterator[QueryCursor]:
        self.executed += 1
        async with super().cursor(table, sql, parameters) as cursor:
            yield cursor


@pytest.fixture
async def service(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[DatasetService]:
    sandbox = CountingSandbox(SandboxLimits(timeout_s=1.0))
    yield DatasetService(
        engine, DatasetFiles(tmp_path / "datasets", grace_s=60), sandbox, max_upload_bytes=10**8
    )
    sandbox.close()


async def _principal(engine: AsyncEngine) -> Principal:
    async with engine.begin() as connection:
        customer_id = await make_customer(connection)
        user_id = await make_user(connection, customer_id)
    return Principal(user_id, customer_id, Role.MEMBER)


@pytest.fixture
async def ann(engine: AsyncEngine) -> Principal:
    return await _principal(engine)


async def _run(
    pool: WorkerPool,
    service: DatasetService,
    principal: Principal,
    script: str,
    *,
    max_rows: int = 100_000,
    **host: object,
) -> tuple[RunResult, ScriptDatasets]:
    reader = ScriptDatasets(
        CustomerDatasets(service, principal), service.sandbox, max_rows=max_rows
    )
    async with reader:
        result = await run_script(pool, script, host=Host(datasets=reader, **host))  # type: ignore[arg-type]
    return result, reader


def _logged(result: RunResult) -> list[JsonValue]:
    """The run's log lines: values logged as JSON read back, text as it is."""
    assert result.status is RunStatus.SUCCESS, result.error
    return [_value(line) for line in result.logs]


def _value(line: str) -> JsonValue:
    try:
        return json.loads(line)
    except ValueError:
        return line


async def test_a_script_lists_describes_and_queries_its_customers_datasets(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    people = await service.create(ann, "people", csv(PEOPLE))
    other = await service.create(ann, "other", csv("n\n1\n"))
    script = f"""
        DOMO.log(DOMO.listDatasets());
        const ds = DOMO.getDataset({people.id!r});
        DOMO.log([ds.id, ds.name, ds.rowCount, ds.columns]);
        const sql = 'select "First Name", amount from tbl where amount > 15 order by id';
        DOMO.log(ds.queryData(sql));
        DOMO.log(DOMO.queryData({people.id!r}, 'select count(*) as n from tbl'));
    """
    result, _ = await _run(pool, service, ann, script)
    assert _logged(result) == [
        [people.id, other.id],
        [
            people.id,
            "people",
            3,
            [
                {"name": "id", "type": "LONG"},
                {"name": "First Name", "type": "STRING"},
                {"name": "amount", "type": "DOUBLE"},
            ],
        ],
        {"columns": ["First Name", "amount"], "rows": [["Bob", 20], ["Cy, Jr", 30]], "more": False},
        {"columns": ["n"], "rows": [[3]], "more": False},
    ]


async def test_another_customers_dataset_is_as_unknown_as_a_missing_one(
    pool: WorkerPool, service: DatasetService, ann: Principal, engine: AsyncEngine
) -> None:
    stranger = await _principal(engine)
    theirs = await service.create(stranger, "secret", csv("n\n1\n"))
    missing = "0" * len(theirs.id)
    script = f"""
        DOMO.log(DOMO.listDatasets());
        for (const id of [{theirs.id!r}, {missing!r}]) {{
          for (const call of [() => DOMO.getDataset(id), () => DOMO.queryData(id, 'select 1')]) {{
            try {{ call(); }} catch (e) {{ DOMO.log(e.message.replace(id, 'ID')); }}
          }}
        }}
    """
    result, _ = await _run(pool, service, ann, script)
    assert _logged(result) == [[]] + ["no dataset 'ID' is readable by this run"] * 4


async def test_pages_read_in_order_execute_the_query_once_and_see_every_row_once(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    rows = "".join(f"{n}\n" for n in range(2345))
    dataset = await service.create(ann, "numbers", csv("n\n" + rows))
    script = f"""
        const ds = DOMO.getDataset({dataset.id!r});
        const seen = [];
        let offset = 0, page;
        do {{
          page = ds.queryData('select n from tbl order by n', {{offset, limit: 1000}});
          for (const row of page.rows) seen.push(row[0]);
          offset += page.rows.length;
        }} while (page.more);
        const pages = [];
        for (const p of ds.queryPages('select n from tbl order by n', {{limit: 500}})) {{
          pages.push([p.offset, p.rows.length, p.rows[0][0]]);
        }}
        DOMO.log([seen.length, new Set(seen).size, seen[0], seen[seen.length - 1]]);
        DOMO.log(pages);
        DOMO.log(ds.queryData('select n from tbl order by n', {{offset: 2340, limit: 10}}).rows);
    """
    sandbox = service.sandbox
    assert isinstance(sandbox, CountingSandbox)
    result, _ = await _run(pool, service, ann, script)
    assert _logged(result) == [
        [2345, 2345, 0, 2344],
        [[0, 500, 0], [500, 500, 500], [1000, 500, 1000], [1500, 500, 1500], [2000, 345, 2000]],
        [[2340], [2341], [2342], [2343], [2344]],
    ]
    # One execution for the offset/limit loop, one for the pages, one for the jump back.
    assert sandbox.executed == 3


async def test_a_run_reads_the_version_it_started_with(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    dataset = await service.create(ann, "numbers", csv("n\n1\n2\n3\n"))

    class Publisher:
        """`DOMO.setState` publishes a new version of the dataset mid-run."""

        async def get(self, key: str) -> JsonValue:
            return None

        async def set(self, key: str, value: JsonValue) -> None:
            await service.write(ann, dataset.id, WriteMode.REPLACE, csv("n\n9\n"))

    script = f"""
        const ds = DOMO.getDataset({dataset.id!r});
        DOMO.log(ds.queryData('select n from tbl order by n', {{offset: 0, limit: 1}}).rows);
        DOMO.setState('publish', 'now');
        DOMO.log(ds.queryData('select n from tbl order by n', {{offset: 1, limit: 5}}).rows);
        DOMO.log(DOMO.queryData({dataset.id!r}, 'select count(*) from tbl').rows);
    """
    result, _ = await _run(pool, service, ann, script, state=Publisher())
    assert _logged(result) == [[[1]], [[2], [3]], [[3]]]
    answer = await service.query(ann, dataset.id, "SELECT n FROM tbl", max_rows=10)
    assert answer.rows == [[9]]


async def test_sandbox_refusals_and_timeouts_reach_the_script_as_errors(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    dataset = await service.create(ann, "people", csv(PEOPLE))
    endless = (
        "with recursive r(n) as (select 1 union all select n + 1 from r) select count(*) from r"
    )
    script = f"""
        const id = {dataset.id!r};
        for (const sql of ["select * from read_csv('/etc/passwd')", 'drop table tbl',
                           'select 1; select 2', {endless!r}, 'select nope from tbl']) {{
          try {{ DOMO.queryData(id, sql); DOMO.log('ran'); }} catch (e) {{ DOMO.log(e.message); }}
        }}
        DOMO.log(DOMO.queryData(id, 'select count(*) from tbl').rows);
        DOMO.queryData(id, 'select 1; select 2');
    """
    result, _ = await _run(pool, service, ann, script)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == ("sql_refused", 8)
    logs = result.logs
    assert logs[:4] == [
        "the table function 'read_csv' is not available here",
        "only a SELECT runs here, not DROP",
        "send exactly one statement, not 2",
        "the query ran past the 1 s limit and was stopped",
    ]
    assert "nope" in logs[4]
    assert str(service.files.root) not in "".join(logs)
    assert logs[5] == "[[3]]"


async def test_whole_results_are_capped_and_pages_bounded(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    dataset = await service.create(ann, "numbers", csv("n\n" + "".join(f"{n}\n" for n in range(7))))
    script = f"""
        const ds = DOMO.getDataset({dataset.id!r});
        DOMO.log(ds.queryData('select n from tbl where n < 5').rows.length);
        for (const call of [
          () => ds.queryData('select n from tbl'),
          () => ds.queryData('select n from tbl', {{limit: 10001}}),
          () => ds.queryData('select n from tbl', {{offset: -1, limit: 2}}),
          () => ds.queryData('select n from tbl', {{offset: 0, limit: 'all'}}),
        ]) {{
          try {{ call(); }} catch (e) {{ DOMO.log(e.message); }}
        }}
    """
    result, _ = await _run(pool, service, ann, script, max_rows=5)
    assert _logged(result) == [
        5,
        "the query answers more than 5 rows: read it in pages with "
        "queryData(sql, {offset, limit}) or queryPages(sql)",
        "a page has at most 10000 rows, not 10001",
        "offset must be a whole number of rows, 0 or more",
        "limit must be a whole number of rows, 1 or more",
    ]


async def test_the_run_releases_its_queries_and_versions_when_it_ends(
    pool: WorkerPool, service: DatasetService, ann: Principal
) -> None:
    dataset = await service.create(ann, "numbers", csv("n\n1\n2\n"))
    folder = service.files.folder(ann.customer_id, dataset.id)
    parts = [folder / p.file for p in dataset.current.parts]
    script = f"""
        DOMO.getDataset({dataset.id!r}).queryData('select n from tbl', {{offset: 0, limit: 1}});
        while (true) {{}}
    """
    reader = ScriptDatasets(CustomerDatasets(service, ann), service.sandbox)
    async with reader:
        result = await run_script(pool, script, host=Host(datasets=reader), wall_time_s=1.0)
        assert all(service.files.is_pinned(p) for p in parts)
    assert result.status is RunStatus.TIMEOUT
    assert not any(service.files.is_pinned(p) for p in parts)


async def test_a_run_without_datasets_gets_a_clear_error(pool: WorkerPool) -> None:
    result = await run_script(pool, "DOMO.listDatasets();")
    assert result.error is not None
    assert (result.error.code, result.error.message) == (
        "unavailable",
        "datasets are not available to this run",
    )
