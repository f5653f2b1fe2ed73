"""THREATS R12 through a development run over HTTP: forged worker messages change nothing.

A script that makes every row flush (and its result) serialise as a multi-megabyte log
message: the answer and the stored run keep their logs within the cap, the gateway's memory
stays bounded and the next run works.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script

LOG_CAP = 1024 * 1024
RSS_GROWTH_MB = 50
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
ROWS = 9000
CELL = 460  # 9,000 rows of 460 characters pass 4 MB: the prelude flushes a chunk mid-run

FORGERIES = {
    "object_to_json": "Object.prototype.toJSON = () => ({t: 'log', line: 'x'.repeat(8e6)});",
    "replaced_stringify": (
        'JSON.stringify = () => \'{"t":"log","line":"\' + \'x\'.repeat(8e6) + \'"}\';'
    ),
    "prototype_getter": (
        "Object.defineProperty(Array.prototype, 'toJSON', "
        "{get() { return () => ({t: 'log', line: 'x'.repeat(8e6)}); }});"
    ),
}


def _rss_mb() -> float:
    """The resident size once freed memory went back to the system: what is kept, not the
    allocator's slack (how much of a freed 4 MB answer glibc keeps moves with the order of
    allocations, e.g. one log line more or less per request)."""
    gc.collect()
    _LIBC.malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _script(forgery: str) -> str:
    return (
        forgery + "\n"
        "datagrid.addColumn('n'); datagrid.addColumn('text');\n"
        f"for (let i = 0; i < {ROWS}; i++) {{\n"
        f"  datagrid.addCell(i); datagrid.addCell('v'.repeat({CELL})); datagrid.endRow();\n"
        "}\n"
        "DOMO.log('done');\n"
    )


async def _run(client: Client, owner: Caller, guid: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/connectors/{guid}/runs",
        headers=owner.headers,
        json={"credentials": {"username": "u", "password": "p"}, "report": "Opportunities"},
    )
    assert response.status == HTTPStatus.OK, await response.text()
    result: dict[str, Any] = await response.json()
    return result


def _assert_clean(result: dict[str, Any]) -> None:
    assert result["status"] == "success", result["error"]
    assert sum(len(line) for line in result["logs"]) <= LOG_CAP
    assert result["logs"] == ["done"]
    assert len(result["rows"]) == ROWS
    assert result["rows"][-1] == [str(ROWS - 1), "v" * CELL]


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
async def test_r12_forged_log_frames_in_a_dev_run(
    client: Client, owner: Caller, forgery: str
) -> None:
    created = await create_connector(client, owner)
    guid = created["guid"]
    await put_script(client, owner, guid, "process", _script(forgery))
    _assert_clean(await _run(client, owner, guid))  # warms up what a run allocates once
    before = _rss_mb()
    for _ in range(2):
        result = await _run(client, owner, guid)
        _assert_clean(result)
        stored = await client.get(f"/api/v1/runs/{result['run_id']}", headers=owner.headers)
        assert stored.status == HTTPStatus.OK
        record = await stored.json()
        assert record["logs"] == ["done"]
    assert _rss_mb() - before < RSS_GROWTH_MB
    await put_script(client, owner, guid, "process", "DOMO.log('next');")
    after = await _run(client, owner, guid)
    assert (after["status"], after["logs"]) == ("success", ["next"])
