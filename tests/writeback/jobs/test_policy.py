"""Which failures are retried, after how long, and the spool of a pull job."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runtime.model import Column, ColumnType, HttpTraceEntry, RunError, RunResult, RunStatus
from writeback.jobs.models import Progress
from writeback.jobs.policy import RetryPolicy, is_transient, parse_retry_after
from writeback.jobs.sink import SpoolSink, sweep_spools

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def failed(status: RunStatus, code: str, *trace: tuple[int | None, str | None]) -> RunResult:
    return RunResult(
        status=status,
        error=RunError(code=code, message="m"),
        http=[
            HttpTraceEntry(method="GET", url="u", status=s, duration_ms=1, error=e)
            for s, e in trace
        ],
    )


@pytest.mark.parametrize(
    ("result", "transient"),
    [
        (failed(RunStatus.TIMEOUT, "timeout"), True),
        (failed(RunStatus.ERROR, "worker_crashed"), True),
        (failed(RunStatus.FAILED, "upstream", (200, None), (429, None)), True),
        (failed(RunStatus.FAILED, "upstream", (503, None)), True),
        (failed(RunStatus.ERROR, "script_exception", (None, "upstream_timeout")), True),
        (failed(RunStatus.FAILED, "upstream", (400, None)), False),
        (failed(RunStatus.FAILED, "upstream", (429, None), (200, None)), False),
        (failed(RunStatus.ERROR, "egress_refused", (None, "egress_refused")), False),
        (failed(RunStatus.ERROR, "syntax_error"), False),
    ],
)
def test_transient_failures(result: RunResult, transient: bool) -> None:
    assert is_transient(result) is transient


def test_backoff_doubles_up_to_the_cap_with_jitter_and_retry_after_wins() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=60.0, jitter=lambda: 0.5)

    assert [policy.delay(n, None) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 30.0]
    assert policy.delay(1, 120.0) == 120.0
    assert policy.delay(1, 10**9) == 3600.0


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Mon, 01 Jun 2026 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("soon", NOW) is None


async def test_the_spool_converts_chunks_to_the_final_types_by_column_name(tmp_path: Path) -> None:
    progress = Progress()
    spool = SpoolSink(tmp_path / "a.spool", progress)
    await spool.write(["id", "n"], [[1, "2"], ["3"]])
    await spool.write(["id", "n", "late"], [[4, 5, True]])
    await spool.finish(
        [
            Column(name="id", type=ColumnType.STRING),
            Column(name="n", type=ColumnType.LONG),
            Column(name="late", type=ColumnType.BOOLEAN),
        ]
    )

    body = b"".join([chunk async for chunk in spool.csv_body()])

    assert body.decode() == "id,n,late\n1,2,\n3,,\n4,5,true\n"
    assert progress.rows_read == 3
    assert json.loads((tmp_path / "a.spool").read_text().splitlines()[0]) == [
        ["id", "n"],
        [[1, "2"], ["3"]],
    ]
    await spool.abort()
    assert not (tmp_path / "a.spool").exists()


def test_stale_spools_are_swept(tmp_path: Path) -> None:
    (tmp_path / "old.spool").write_text("")
    (tmp_path / "keep.txt").write_text("")
    later = (tmp_path / "old.spool").stat().st_mtime + 3601

    assert sweep_spools(tmp_path, now=later) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert sweep_spools(tmp_path / "missing") == 0
