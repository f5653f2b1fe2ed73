"""Writeback end to end over HTTP (issue 12, section 4): upload a CSV, run a writeback
connector whose script reads it with quoted column names and posts it to a fake API on
127.0.0.1, and check that every row arrived exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from gateway.settings import Settings
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script
from tests.gateway.datasets.conftest import created

ROWS = 1200
# Every third customer has no name: the script's `where` leaves them out.
CSV = "Customer Id,Full Name,Amount Due\n" + "".join(
    f"{n},{'' if n % 3 == 0 else f'Name {n}'},{n * 1.5}\n" for n in range(1, ROWS + 1)
)
EXPECTED = [n for n in range(1, ROWS + 1) if n % 3 != 0]

# Written as a published script would be: `var`, loops, the documented globals only.
PER_ROW = """
var dataset = DOMO.getDataset(metadata.parameters.datasetId);
var result = dataset.queryData(
  'select "Customer Id", "Full Name", "Amount Due" from tbl ' +
  'where "Full Name" is not null order by "Customer Id"');
httprequest.addHeader('Content-Type', 'application/json');
for (var i = 0; i < result.rows.length; i++) {
  var record = {};
  for (var c = 0; c < result.columns.length; c++) record[result.columns[c]] = result.rows[i][c];
  httprequest.post('http://HOST/records', JSON.stringify(record));
  if (httprequest.getStatusCode() != 201) datagrid.error(502, 'the API refused a record');
}
DOMO.log('sent ' + result.rows.length + ' of ' + dataset.rowCount);
"""

BATCHES = """
var sent = 0;
var sql = 'select "Customer Id", "Full Name", "Amount Due" from tbl where "Full Name" is not null';
var pages = DOMO.queryPages(metadata.parameters.datasetId, sql, {limit: 500});
httprequest.addHeader('Content-Type', 'application/json');
for (var page of pages) {
  var batch = page.rows.map(function (row) {
    return {id: row[0], name: row[1], amount: row[2]};
  });
  httprequest.post('http://HOST/batches', JSON.stringify({records: batch}));
  if (httprequest.getStatusCode() != 201) datagrid.error(502, 'the API refused a batch');
  sent += batch.length;
}
DOMO.log('sent ' + sent);
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One worker; scripts may reach the fake API on loopback."""
    return Settings(data_dir=tmp_path / "data", workers=1, egress_allow_private=True)


@dataclass
class Sink:
    """The fake third-party API: what it received."""

    host: str
    records: list[dict[str, Any]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)


@pytest.fixture
async def sink(aiohttp_server: AiohttpServer) -> Sink:
    found = Sink("")

    async def record(request: web.Request) -> web.Response:
        found.records.append(await request.json())
        return web.json_response({"ok": True}, status=201)

    async def batch(request: web.Request) -> web.Response:
        records = (await request.json())["records"]
        found.batches.append(len(records))
        found.records += records
        return web.json_response({"ok": True}, status=201)

    app = web.Application()
    app.router.add_post("/records", record)
    app.router.add_post("/batches", batch)
    server = await aiohttp_server(app)
    found.host = f"127.0.0.1:{server.port}"
    return found


async def _writeback(client: Client, caller: Caller, sink: Sink, source: str) -> str:
    connector = await create_connector(
        client,
        caller,
        kind="writeback",
        key="sink",
        auth={"method": "none"},
        allowed_hosts=[sink.host],
        parameters=[{"name": "datasetId", "type": "string", "required": True}],
        reports=["Push"],
    )
    guid: str = connector["guid"]
    await put_script(client, caller, guid, "process", source.replace("HOST", sink.host))
    return guid


async def _run(client: Client, caller: Caller, guid: str, dataset_id: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/connectors/{guid}/runs",
        headers=caller.headers,
        json={"parameters": {"datasetId": dataset_id}, "report": "Push"},
    )
    assert response.status == HTTPStatus.OK, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def test_a_writeback_posts_every_row_once(client: Client, owner: Caller, sink: Sink) -> None:
    dataset = await created(client, owner, CSV, name="customers")
    guid = await _writeback(client, owner, sink, PER_ROW)
    result = await _run(client, owner, guid, dataset["id"])
    assert result["status"] == "success", result["error"]
    assert result["logs"] == [f"sent {len(EXPECTED)} of {ROWS}"]
    assert [r["Customer Id"] for r in sink.records] == EXPECTED
    assert sink.records[0] == {"Customer Id": 1, "Full Name": "Name 1", "Amount Due": 1.5}
    assert len(result["http"]) == len(EXPECTED)


async def test_a_writeback_posts_batches_of_500(client: Client, owner: Caller, sink: Sink) -> None:
    dataset = await created(client, owner, CSV, name="customers")
    guid = await _writeback(client, owner, sink, BATCHES)
    result = await _run(client, owner, guid, dataset["id"])
    assert result["status"] == "success", result["error"]
    assert sink.batches == [500, 300]
    assert sorted(r["id"] for r in sink.records) == EXPECTED
    assert result["logs"] == [f"sent {len(EXPECTED)}"]


async def test_another_customers_dataset_is_not_readable(
    client: Client, owner: Caller, outsider: Caller, sink: Sink
) -> None:
    theirs = await created(client, outsider, CSV, name="customers")
    guid = await _writeback(client, owner, sink, BATCHES)
    result = await _run(client, owner, guid, theirs["id"])
    assert result["status"] == "error"
    assert result["error"]["code"] == "dataset_not_found"
    assert result["error"]["message"] == f"no dataset {theirs['id']!r} is readable by this run"
    assert sink.records == []


async def test_writeback_runs_keep_sql_tables_and_actions_have_none(
    client: Client, owner: Caller, sink: Sink
) -> None:
    source = """
    sql.createTable('runs', {n: 'LONG'});
    sql.insert('runs', {n: sql.select('runs').length + 1});
    DOMO.log(sql.export('runs').rows);
    """
    guid = await _writeback(client, owner, sink, source)
    dataset = await created(client, owner, "n\n1\n", name="one")
    logs = [(await _run(client, owner, guid, dataset["id"]))["logs"] for _ in range(2)]
    assert logs == [["[[1]]"], ["[[1],[2]]"]]
    action = await create_connector(
        client, owner, kind="action", key="act", auth={"method": "none"}
    )
    await put_script(client, owner, action["guid"], "process", source)
    response = await client.post(
        f"/api/v1/connectors/{action['guid']}/runs", headers=owner.headers, json={}
    )
    result = await response.json()
    assert result["error"]["message"] == "sql.* is not available to this run"
