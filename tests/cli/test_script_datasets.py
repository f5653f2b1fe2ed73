"""`gateway script run --dataset ID=PATH[:NAME]`: local files read under the SQL sandbox."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.cli.test_script_run import gateway

SCRIPT = """
DOMO.log(DOMO.listDatasets());
for (const id of DOMO.listDatasets()) {
  const ds = DOMO.getDataset(id);
  DOMO.log([ds.id, ds.name, ds.rowCount, ds.columns.map(c => c.name + ':' + c.type).join(',')]);
}
const sales = DOMO.getDataset('sales');
DOMO.log(sales.queryData('select "First Name", amount from tbl where amount > 15 order by 1').rows);
DOMO.log(DOMO.queryData('events', 'select count(*) from tbl').rows);
DOMO.log(DOMO.queryData('points', 'select max(x) from tbl').rows);
try { DOMO.queryData('sales', "select * from read_csv('SALES')"); }
catch (e) { DOMO.log(e.message); }
"""


def _files(folder: Path) -> tuple[Path, Path, Path]:
    sales = folder / "sales.csv"
    sales.write_text('id,First Name,amount\n1,Ann,10.5\n2,Bob,20\n3,"Cy, Jr",30\n')
    events = folder / "events.jsonl"
    events.write_text('{"kind": "a", "n": 1}\n{"kind": "b", "n": 2}\n')
    points = folder / "points.parquet"
    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT range AS x FROM range(5)) TO '{points}' (FORMAT parquet)")
    return sales, events, points


async def test_local_files_are_datasets_under_the_sandbox(tmp_path: Path) -> None:
    sales, events, points = _files(tmp_path)
    script = tmp_path / "read.js"
    script.write_text(SCRIPT.replace("SALES", str(sales)))
    done = await gateway(
        "script",
        "run",
        str(script),
        "--dataset",
        f"sales={sales}:Sales 2024",
        "--dataset",
        f"events={events}",
        "--dataset",
        f"points={points}",
        "--format",
        "json",
    )
    assert done.code == 0, done.stderr
    assert done.document()["logs"] == [
        '["sales","events","points"]',
        '["sales","Sales 2024",3,"id:LONG,First Name:STRING,amount:DOUBLE"]',
        '["events","events",2,"kind:STRING,n:LONG"]',
        '["points","points",5,"x:LONG"]',
        '[["Bob",20],["Cy, Jr",30]]',
        "[[2]]",
        "[[4]]",
        "the table function 'read_csv' is not available here",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sales", "--dataset 'sales': write ID=PATH[:NAME]"),
        ("=x.csv", "write ID=PATH[:NAME]"),
        ("sales=/nonexistent/sales.csv", "no file /nonexistent/sales.csv"),
        ("sales=NOTES", "a dataset is a .csv, .jsonl, .ndjson, .json or .parquet file"),
        ("sales=RAGGED", "RAGGED"),
    ],
)
async def test_bad_datasets_exit_2(tmp_path: Path, spec: str, message: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    spec = spec.replace("NOTES", str(notes)).replace("RAGGED", str(ragged))
    message = message.replace("RAGGED", "ragged.csv': ")
    script = tmp_path / "ok.js"
    script.write_text("DOMO.log('ok')")
    done = await gateway("script", "run", str(script), "--dataset", spec)
    assert done.code == 2, done.stdout
    assert message in done.stderr
    assert done.stdout == ""


async def test_an_id_given_twice_exits_2(tmp_path: Path) -> None:
    sales, _, _ = _files(tmp_path)
    script = tmp_path / "ok.js"
    script.write_text("DOMO.log('ok')")
    done = await gateway(
        "script", "run", str(script), "--dataset", f"s={sales}", "--dataset", f"s={sales}"
    )
    assert done.code == 2
    assert "the id 's' is given twice" in done.stderr
