"""Forged worker messages (THREATS R12): the prelude, the worker and the run each hold."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field

import pytest

from runtime import frames, protocol
from runtime.execution import Execution, Outcome
from runtime.host import Host
from runtime.model import ErrorCode, RunStatus
from runtime.pool import WorkerPool
from runtime.worker import Outbox
from tests.conftest import make_request, run_script

LOG_CAP = 1024 * 1024
ROWS = (
    "datagrid.addColumn('n');\n"
    "for (let i = 0; i < 2500; i++) { datagrid.addCell('v' + i); datagrid.endRow(); }\n"
)
# The script of issue 10: every row flush would serialise as a multi-megabyte log message.
TO_JSON = "Object.prototype.toJSON = () => ({t: 'log', line: 'x'.repeat(8e6)});\n"

FORGERIES = {
    "object_to_json": TO_JSON,
    "array_to_json": "Array.prototype.toJSON = () => ({t: 'log', line: 'x'.repeat(8e6)});\n",
    "replaced_stringify": (
        'JSON.stringify = () => \'{"t":"log","line":"\' + \'x\'.repeat(8e6) + \'"}\';\n'
    ),
    "prototype_getters": (
        "Object.defineProperty(Object.prototype, 't', {get() { return 'log'; }});\n"
        "Object.defineProperty(Object.prototype, 'line', {get() { return 'x'.repeat(8e6); }});\n"
    ),
    "to_primitive": (
        "const big = function () {}; big[Symbol.toPrimitive] = () => 'x'.repeat(8e6);\n"
        "Object.prototype.toJSON = function () { return big; };\n"
        "DOMO.log(big); console.log(big, big);\n"
    ),
}


def _log_chars(logs: list[str]) -> int:
    return sum(len(line) for line in logs)


@pytest.mark.parametrize("setup", FORGERIES.values(), ids=FORGERIES.keys())
async def test_r12_forged_log_frames_stay_within_the_log_cap(pool: WorkerPool, setup: str) -> None:
    result = await run_script(pool, setup + ROWS + "DOMO.log('done');", wall_time_s=20)
    assert result.status is RunStatus.SUCCESS, result.error
    assert [column.name for column in result.columns] == ["n"]
    assert len(result.rows) == 2500
    assert result.rows[-1] == ["v2499"]
    assert _log_chars(result.logs) <= LOG_CAP + len(frames.LOG_TRUNCATED)
    assert "done" in result.logs or result.logs[-1] == frames.LOG_TRUNCATED
    after = await run_script(pool, "DOMO.log('next')")
    assert after.logs == ["next"]


async def test_r12_polluted_prototypes_do_not_change_the_result(pool: WorkerPool) -> None:
    result = await run_script(
        pool,
        "Object.prototype.toJSON = () => ({status: 'success', rows: [['forged']]});\n"
        "Array.prototype.toJSON = () => 'forged';\n"
        "datagrid.addColumn('a'); datagrid.addCell('real'); datagrid.endRow();\n"
        "datagrid.error('E1', 'the script failed');",
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error.code, result.error.message) == ("E1", "the script failed")
    assert result.rows == []


async def test_r12_a_discovery_tree_with_getters_and_cycles_is_read_safely(
    pool: WorkerPool,
) -> None:
    from runtime.model import RunMode

    result = await run_script(
        pool,
        "const n = discovery.addNode(discovery.tree, 'a');\n"
        "Object.defineProperty(n, 'name', {get() { return 'x'.repeat(8e6); }});\n"
        "discovery.addLeaf(n, 'b'); n.extra = {t: 'log'}; discovery.publishTree();",
        mode=RunMode.DISCOVERY,
    )
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.discovery is not None
    assert result.discovery.tree == {
        "name": "root",
        "children": [{"name": "", "children": [{"name": "b", "leaf": True}]}],
    }
    cyclic = await run_script(
        pool,
        "const n = discovery.addNode(discovery.tree, 'a'); n.children.push(discovery.tree);",
        mode=RunMode.DISCOVERY,
    )
    assert cyclic.status is RunStatus.ERROR
    assert cyclic.error is not None
    assert "nested too deeply" in cyclic.error.message


# --- the worker's checks, on what a subverted prelude could hand over ----------------------


@pytest.mark.parametrize(
    "chunk",
    [
        '{"columns":["a"],"rows":[["x"]],"t":"log"}',
        '{"columns":["a"],"rows":[[{"t":"log"}]]}',
        '{"columns":[1],"rows":[]}',
        '{"columns":["a"],"rows":{"0":["x"]}}',
        '[["x"]]',
        "not json",
    ],
)
def test_worker_refuses_a_malformed_rows_chunk(chunk: str) -> None:
    with pytest.raises(frames.FrameError):
        frames.rows_frame(chunk)


def test_worker_builds_the_rows_frame_itself() -> None:
    frame = frames.rows_frame('{"rows":[["x",1,null,true,2.5]],"columns":["a","b","c","d","e"]}')
    assert frame == {
        "t": "rows",
        "columns": ["a", "b", "c", "d", "e"],
        "rows": [["x", 1, None, True, 2.5]],
    }


@pytest.mark.parametrize(
    "result",
    [
        {"status": "timeout"},
        {"error": {"code": None, "message": "m", "line": 1}},
        {"columns": [{"name": "a", "type": "BLOB"}]},
        {"auth": {"success": "yes", "message": None}},
        {"discovery": {"options": [{"value": 1, "label": "x"}], "tree": None}},
        {"t": "log"},
    ],
)
def test_worker_refuses_a_malformed_result(result: dict[str, object]) -> None:
    good: dict[str, object] = {
        "status": "success",
        "auth": None,
        "error": None,
        "columns": [],
        "rows": [],
        "discovery": None,
    }
    with pytest.raises(frames.FrameError):
        frames.result_frame(json.dumps({**good, **result}))


# --- the run's own checks, against a worker that sends anything --------------------------


@dataclass
class ScriptedWorker:
    """Stands in for a subverted worker process: sends the given messages, records replies."""

    messages: list[dict[str, object]]
    sent: list[bytes] = field(default_factory=list)
    last_size: int = 0
    process: object = None

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def read(self) -> dict[str, object]:
        if not self.messages:
            raise protocol.ProtocolError("worker pipe closed")
        message = self.messages.pop(0)
        self.last_size = len(protocol.encode(message)) - 4
        await asyncio.sleep(0)
        return message


def _result(**changes: object) -> dict[str, object]:
    return {
        "t": "result",
        "status": "success",
        "auth": None,
        "error": None,
        "columns": [],
        "rows": [],
        "discovery": None,
        **changes,
    }


async def _drive(messages: list[dict[str, object]], *, log_bytes: int = LOG_CAP) -> Outcome:
    execution = Execution(make_request("", log_bytes=log_bytes), Host())
    return await execution.drive(ScriptedWorker(messages))  # type: ignore[arg-type]


async def test_run_caps_logs_itself() -> None:
    lines: list[dict[str, object]] = [{"t": "log", "line": "x" * 1000} for _ in range(300)]
    outcome = await _drive([*lines, _result()], log_bytes=100_000)
    result = outcome.result
    assert result.status is RunStatus.SUCCESS
    assert result.logs[-1] == frames.LOG_TRUNCATED
    assert len(result.logs) == 101
    assert _log_chars(result.logs[:-1]) <= 100_000


@pytest.mark.parametrize(
    "message",
    [
        {"t": "ready"},
        {"t": "reply", "id": 1, "ok": None},
        {"t": "checked", "ok": True},
        {"t": "log", "line": {"t": "result"}},
        {"t": "rows", "columns": ["a"], "rows": [[{"nested": 1}]]},
        {"t": "rows", "columns": [1], "rows": []},
        _result(status="timeout"),
        _result(columns=[{"name": "a", "type": "BLOB"}]),
        _result(error={"code": [1], "message": "m"}, status="error"),
        _result(columns=[{"name": "a", "type": "STRING"}], rows=[[["nested"]]]),
    ],
)
async def test_a_message_the_run_does_not_allow_ends_it_and_kills_the_worker(
    message: dict[str, object],
) -> None:
    outcome = await _drive([message, _result()])
    result = outcome.result
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.WORKER_CRASHED
    assert "broke the protocol" in result.error.message
    assert outcome.reusable is False


def test_worker_outbox_ends_the_run_at_a_bad_chunk_and_says_nothing_more() -> None:
    read_fd, write_fd = os.pipe()
    violations: list[bool] = []
    try:
        outbox = Outbox(write_fd, lambda: violations.append(True))
        outbox.rows('{"columns":["a"],"rows":[["x"]]}')
        outbox.rows('{"columns":["a"],"rows":[["x"]],"t":"log"}')
        outbox.rows('{"columns":["a"],"rows":[["y"]]}')
        outbox.frame({"t": "log", "line": "late"})
        outbox.result(
            '{"status":"success","auth":null,"error":null,"columns":[],"rows":[],"discovery":null}'
        )
        outbox.frame({"t": "ready", "rss": 0})
        outbox.frame({"t": "log", "line": "next run"})
        outbox.drain()
        kinds = [json.loads(protocol.read_frame(read_fd)) for _ in range(4)]
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert [k["t"] for k in kinds] == ["rows", "result", "ready", "log"]
    assert kinds[1]["error"]["code"] == "script_exception"
    assert "tampered" in kinds[1]["error"]["message"]
    assert kinds[3]["line"] == "next run"
    assert violations == [True]


def test_worker_outbox_says_a_frame_after_everything_queued_before_it() -> None:
    read_fd, write_fd = os.pipe()
    try:
        outbox = Outbox(write_fd, lambda: None)
        outbox.rows('{"columns":["a"],"rows":[["x"]]}')
        outbox.frame({"t": "log", "line": "queued"})
        outbox.say({"t": "call", "id": 1, "op": "http.request", "args": {}})
        kinds = [json.loads(protocol.read_frame(read_fd))["t"] for _ in range(3)]
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert kinds == ["rows", "log", "call"]
