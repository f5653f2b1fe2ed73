"""Sections 3 and 4: rows produced by a script, through the pool into a sink that drops them.

Runs use `result_rows=None` and a `DiscardSink`, as a job does, so the numbers cover the
script, the worker and the transfer to the gateway, not result assembly. Each measurement is
one warm-up run, then the median of the next ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.common import (
    Budget,
    DiscardSink,
    Row,
    at_least,
    cut_note,
    failure_note,
    median,
    request,
    run_once,
    started_pool,
)
from bench.jsbare import run_bare
from bench.scripts import (
    INGEST_CELLS,
    INGEST_ROWS,
    INGEST_SCRIPT,
    MAGIC_ROWS,
    PARSE_MS_PREFIX,
    magic_script,
)
from runtime.host import Host
from runtime.model import RunResult, RunStatus
from runtime.pool import WorkerPool
from runtime.worker import build_prelude

INGEST_SECTION = "3 addCell"
MAGIC_SECTION = "4 magicParseJSON"
REPS = 3
MEMORY_MB = 512
TARGET_CELLS_PER_S = 1_000_000


@dataclass(slots=True)
class Runs:
    """Measured runs of one script (the warm-up dropped)."""

    seconds: list[float] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    wanted: int = REPS + 1
    done: int = 0


async def _pool_runs(pool: WorkerPool, script: str, rows: int, budget: Budget) -> Runs:
    runs = Runs()
    while len(runs.seconds) < runs.wanted and budget.left():
        sink = DiscardSink()
        wall_s = max(1.0, min(30.0, budget.remaining()))
        run = request(script, result_rows=None, memory_mb=MEMORY_MB, wall_time_s=wall_s)
        result, seconds = await run_once(pool, run, Host(rows=sink))
        if result.status is RunStatus.TIMEOUT and wall_s < 30.0:
            budget.hit = True  # the run was given only the time left, and needed more
            break
        if result.status is not RunStatus.SUCCESS:
            raise RuntimeError(f"run failed: {failure_note(result)}")
        if sink.rows != rows or not sink.finished:
            raise RuntimeError(f"the sink got {sink.rows} rows, expected {rows}")
        runs.seconds.append(seconds)
        runs.results.append(result)
        runs.done += 1
    if len(runs.seconds) > 1:
        del runs.seconds[0], runs.results[0]
    return runs


def _bare_runs(script: str, budget: Budget) -> list[float]:
    prelude = build_prelude()
    seconds: list[float] = []
    while len(seconds) < REPS and budget.left():
        bare = run_bare(script, prelude=prelude, memory_mb=MEMORY_MB)
        if bare.result.get("status") != "success":
            raise RuntimeError(f"bare run failed: {bare.result.get('error')}")
        seconds.append(bare.seconds)
    return seconds


def _per_s(amount: int, seconds: Sequence[float]) -> float:
    middle = median(seconds)
    return amount / middle if middle > 0 else math.nan


async def _with_pool(script: str, rows: int, budget: Budget, share: float) -> tuple[Runs, Budget]:
    """Runs on a fresh one-worker pool, within `share` of the time left."""
    pool = await started_pool(1)
    try:
        pool_budget = budget.sub(budget.remaining() * share)
        return await _pool_runs(pool, script, rows, pool_budget), pool_budget
    finally:
        await pool.close()


async def run_ingest(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """1,000,000 `addCell` calls through the pool, and the same run in a bare Context."""
    runs, pool_budget = await _with_pool(INGEST_SCRIPT, INGEST_ROWS, budget, 0.6)
    bare_budget = budget.sub(budget.remaining())
    bare = _bare_runs(INGEST_SCRIPT, bare_budget)
    pool_rate = _per_s(INGEST_CELLS, runs.seconds)
    base = f"{INGEST_CELLS:,} cells (10 cols x {INGEST_ROWS:,} rows)"
    s = INGEST_SECTION
    return [
        Row("ingest.pool.cells_per_s", s, "pool run (wall), cells/s", pool_rate, "cells/s",
            f">= {TARGET_CELLS_PER_S:,}", at_least(pool_rate, TARGET_CELLS_PER_S),
            cut_note(pool_budget, runs.done, runs.wanted)
            or f"{base}, median of {len(runs.seconds)}"),
        Row("ingest.pool.seconds", s, "pool run (wall), seconds", median(runs.seconds), "s"),
        Row("ingest.js_only.cells_per_s", s, "JS only (bare Context, stub emit), cells/s",
            _per_s(INGEST_CELLS, bare), "cells/s",
            note=cut_note(bare_budget, len(bare), REPS) or f"median of {len(bare)}"),
        Row("ingest.js_only.seconds", s, "JS only, seconds", median(bare), "s"),
    ]  # fmt: skip


def _parse_seconds(result: RunResult) -> float:
    for line in result.logs:
        if line.startswith(PARSE_MS_PREFIX):
            return float(line.removeprefix(PARSE_MS_PREFIX)) / 1000
    return math.nan


async def _magic_rows(page: int, budget: Budget) -> list[Row]:
    runs, pool_budget = await _with_pool(magic_script(page), MAGIC_ROWS, budget, 1.0)
    inside = [_parse_seconds(result) for result in runs.results]
    key = "magic.single" if page >= MAGIC_ROWS else f"magic.pages{page}"
    label = "1 call" if page >= MAGIC_ROWS else f"pages of {page:,}"
    note = cut_note(pool_budget, runs.done, runs.wanted)
    s = MAGIC_SECTION
    return [
        Row(f"{key}.rows_per_s", s, f"{label}: whole run (wall), rows/s",
            _per_s(MAGIC_ROWS, runs.seconds), "rows/s",
            note=note or f"{MAGIC_ROWS:,} rows x 5 keys, build included, "
            f"median of {len(runs.seconds)}"),
        Row(f"{key}.parse_rows_per_s", s, f"{label}: inside magicParseJSON, rows/s",
            _per_s(MAGIC_ROWS, inside), "rows/s", note="timed by the script (emit included)"),
    ]  # fmt: skip


async def run_magic(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """100,000 objects through `magicParseJSON`, in one call and in pages of 1,000."""
    rows = await _magic_rows(MAGIC_ROWS, budget.sub(budget.remaining() / 2))
    return rows + await _magic_rows(1_000, budget.sub(budget.remaining()))
