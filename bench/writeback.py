"""Writeback throughput (SPEC 10): rows of a DuckDB dataset through a script to a local sink.

`python -m bench.writeback [--rows 1000000] [--batch 500] [--page 10000]` builds a dataset
of `--rows` rows (an id, a name, an amount, a date, a flag), then runs a script in the real
worker pool that reads it with `queryPages` (decision 0023) and posts it in batches of
`--batch` rows, as JSON, through the egress client to an aiohttp sink on 127.0.0.1. It
prints rows/min (target ≥ 1,000,000) and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Final

import duckdb
from aiohttp import ClientSession, web

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import Host
from runtime.model import Limits, Metadata, RunRequest, RunStatus
from runtime.pool import PoolConfig, WorkerPool
from writeback.datasets.columns import DatasetColumn, stored_column
from writeback.datasets.sandbox import SqlSandbox, SqlTable
from writeback.scriptdata import DatasetInfo, LocalDataset, LocalDatasets, ScriptDatasets

TARGET_ROWS_PER_MIN: Final = 1_000_000

SCRIPT: Final = """
var url = metadata.parameters.url, size = metadata.parameters.batch;
var sent = 0;
httprequest.addHeader('Content-Type', 'application/json');
var pages = DOMO.queryPages('bench', 'select * from tbl', {limit: metadata.parameters.page});
for (var page of pages) {
  for (var i = 0; i < page.rows.length; i += size) {
    var batch = page.rows.slice(i, i + size);
    httprequest.addHeader('X-Rows', batch.length);
    httprequest.post(url, JSON.stringify({columns: page.columns, rows: batch}));
    if (httprequest.getStatusCode() != 204) throw new Error('the sink refused a batch');
    sent += batch.length;
  }
}
DOMO.log(sent);
"""


def build_dataset(folder: Path, rows: int) -> LocalDataset:
    """A part file of `rows` rows, as an upload would store it."""
    part = folder / "part.duckdb"
    with duckdb.connect(str(part)) as connection:
        connection.execute(
            "CREATE TABLE data AS SELECT range AS id, 'customer ' || range AS name,"
            " (range * 1.25)::DOUBLE AS amount, DATE '2024-01-01' + (range % 365)::INTEGER AS day,"
            " range % 2 = 0 AS flag FROM range(?)",
            [rows],
        )
        described = connection.execute("DESCRIBE data").fetchall()
    columns: tuple[DatasetColumn, ...] = tuple(
        stored_column(str(name), str(kind))[0] for name, kind, *_ in described
    )
    return LocalDataset(DatasetInfo("bench", "bench", rows, columns), SqlTable((part,)))


async def start_sink() -> tuple[web.AppRunner, str, list[int]]:
    """A sink that takes each batch (reading its body) and counts the rows it says it holds."""
    received = [0, 0]

    async def take(request: web.Request) -> web.Response:
        await request.read()
        received[0] += int(request.headers.get("X-Rows", "0"))
        received[1] += 1
        return web.Response(status=204)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/batches", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/batches", received


async def plain_python(part: Path, url: str, batch: int, page: int) -> float:
    """The reference: the same work without a script (a DuckDB fetch plus aiohttp posts)."""
    started = time.perf_counter()
    with duckdb.connect(str(part), read_only=True) as connection:
        cursor = connection.execute("SELECT * FROM data")
        names = [str(column[0]) for column in cursor.description or []]
        async with ClientSession() as session:
            while fetched := cursor.fetchmany(page):
                values = json_rows_of(fetched)
                for i in range(0, len(values), batch):
                    chunk = values[i : i + batch]
                    body = json.dumps({"columns": names, "rows": chunk})
                    headers = {"Content-Type": "application/json", "X-Rows": str(len(chunk))}
                    async with session.post(url, data=body, headers=headers) as answer:
                        if answer.status != 204:
                            raise RuntimeError("the sink refused a batch")
    return time.perf_counter() - started


def json_rows_of(rows: list[tuple[object, ...]]) -> list[list[object]]:
    """Rows as JSON values (dates as ISO text), as the sandbox answers them."""
    return [[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows]


async def measure(rows: int, batch: int, page: int) -> int:
    """Run the benchmark once; print the numbers; return the exit code."""
    runner, url, received = await start_sink()
    pool = WorkerPool(PoolConfig(size=1))
    await pool.start()
    sandbox = SqlSandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-writeback-") as folder:
            dataset = await asyncio.to_thread(build_dataset, Path(folder), rows)
            async with (
                EgressClient(AddressPolicy(allow_private=True)) as egress,
                ScriptDatasets(LocalDatasets([dataset]), sandbox) as datasets,
            ):
                request = RunRequest(
                    script=SCRIPT,
                    metadata=Metadata(parameters={"url": url, "batch": batch, "page": page}),
                    limits=Limits(wall_time_s=900, http_calls=10_000_000, result_rows=None),
                )
                host = Host(http=egress.session(None), datasets=datasets)
                started = time.perf_counter()
                result = await pool.run(request, host)
                seconds = time.perf_counter() - started
            script_rows, batches = received
            reference = await plain_python(dataset.table.parts[0], url, batch, page)
    finally:
        sandbox.close()
        await pool.close()
        await runner.cleanup()
    if result.status is not RunStatus.SUCCESS or script_rows != rows:
        print(f"failed: {result.status.value} {result.error} (sink got {script_rows} rows)")
        return 1
    per_min = rows / seconds * 60
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "meets" if per_min >= TARGET_ROWS_PER_MIN else "misses"
    print(f"writeback: {rows:,} rows in {batches:,} batches of {batch} in {seconds:.2f} s")
    print(f"writeback: {per_min:,.0f} rows/min ({verdict} the target of {TARGET_ROWS_PER_MIN:,})")
    plain = rows / reference * 60
    print(f"plain Python (DuckDB fetch + aiohttp posts): {plain:,.0f} rows/min")
    print(f"writeback: script / plain Python = {per_min / plain:.2f}")
    print(f"writeback: gateway-side peak RSS {peak_mb:.0f} MB (worker not included)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.writeback")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--page", type=int, default=10_000)
    args = parser.parse_args(argv)
    return asyncio.run(measure(args.rows, args.batch, args.page))


if __name__ == "__main__":
    sys.exit(main())
