"""Section 2: runs per second of a script making one HTTP call to a local upstream.

The upstream is a real aiohttp server in a separate process on 127.0.0.1; calls go through the
gateway's `EgressClient` (one shared connection pool, a per-run session). The pool has one
worker per CPU. A trivial script at the highest concurrency is the baseline without I/O.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.common import Budget, Row, failure_note, request, run_once, started_pool, summarize
from bench.upstream import Upstream
from gateway.egress import AddressPolicy, EgressClient
from runtime.host import Host
from runtime.model import RunRequest, RunStatus
from runtime.pool import WorkerPool

SECTION = "2 http"
MAX_RUNS = 20_000
WARMUP_RUNS = 20
MEASURE_S = 5.0


@dataclass(slots=True)
class Tally:
    """What the concurrent loops did."""

    cap: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    last_failure: str = ""


async def _loop(
    pool: WorkerPool, run: RunRequest, host: Callable[[], Host], budget: Budget, tally: Tally
) -> None:
    while len(tally.latencies) + tally.failures < tally.cap and budget.left():
        result, seconds = await run_once(pool, run, host())
        if result.status is RunStatus.SUCCESS:
            tally.latencies.append(seconds)
        else:
            tally.failures += 1
            tally.last_failure = failure_note(result)


async def _drive(
    pool: WorkerPool, run: RunRequest, host: Callable[[], Host], concurrency: int, tally: Tally
) -> float:
    """Run `concurrency` loops until the tally's cap or the time is up; return the wall time."""
    budget = Budget(tally.seconds)
    started = time.perf_counter()
    await asyncio.gather(*(_loop(pool, run, host, budget, tally) for _ in range(concurrency)))
    return time.perf_counter() - started


def _rate(done: int, elapsed: float) -> float:
    return done / elapsed if done and elapsed > 0 else math.nan


async def _measure(
    pool: WorkerPool, script: str, host: Callable[[], Host], concurrency: int, budget: Budget
) -> list[Row]:
    run = request(script, wall_time_s=10.0)
    await _drive(pool, run, host, concurrency, Tally(WARMUP_RUNS, min(1.0, budget.remaining())))
    tally = Tally(MAX_RUNS, min(MEASURE_S, budget.remaining()))
    elapsed = await _drive(pool, run, host, concurrency, tally)
    done = len(tally.latencies)
    stats = summarize(tally.latencies)
    kind = "1 HTTP call" if "httprequest" in script else "no HTTP (baseline)"
    key = f"http.c{concurrency}" if "httprequest" in script else f"http.baseline.c{concurrency}"
    note = f"n={done} in {elapsed:.1f} s" + (" (run cap hit)" if done >= MAX_RUNS else "")
    if not done:
        note = "time budget hit: section time used up before this measurement"
    if tally.failures:
        note += f"; {tally.failures} failed, last: {tally.last_failure}"
    label = f"{kind}, concurrency {concurrency}"
    return [
        Row(f"{key}.runs_per_s", SECTION, f"{label}: runs/s", _rate(done, elapsed), "runs/s",
            note=note),
        Row(f"{key}.p50", SECTION, f"{label}: latency p50", stats.p50, "ms"),
        Row(f"{key}.p99", SECTION, f"{label}: latency p99", stats.p99, "ms"),
    ]  # fmt: skip


async def _all(pool: WorkerPool, egress: EgressClient, url: str, budget: Budget) -> list[Row]:
    script = f"var body = httprequest.get('{url}'); if (!body) throw new Error('empty body');"

    def http_host() -> Host:
        return Host(http=egress.session(None))

    rows: list[Row] = []
    for concurrency in (1, 8):
        rows += await _measure(pool, script, http_host, concurrency, budget.sub(6.5))
    rows += await _measure(pool, "1", Host, 8, budget.sub(6.0))
    return rows


async def run_section(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """One HTTP call per run at concurrency 1 and 8, pool size = CPU count."""
    size = os.cpu_count() or 1
    async with Upstream() as upstream, EgressClient(AddressPolicy(allow_private=True)) as egress:
        pool = await started_pool(size)
        try:
            rows = await _all(pool, egress, upstream.url, budget)
        finally:
            await pool.close()
    note = f"pool size {size} (CPU count); upstream in its own process"
    return [*rows, Row("http.pool_size", SECTION, "pool size", size, "workers", note=note)]
