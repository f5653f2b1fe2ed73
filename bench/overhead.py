"""Section 1: what a trivial run (`1`) costs on a warm pool, and what preparing a Context costs.

Runs are sequential. "back-to-back" starts each run as soon as the previous one returned, so
the caller may wait for a worker that is still preparing its next Context (what a busy
gateway sees). "idle worker" first waits until every worker reported `ready`, so it shows the
cost of the run itself: pool bookkeeping, two pipe messages and the script in the worker.
A worker driven without the pool (`bench.rawworker`) splits that cost between worker and pool,
and a bare Context times the per-run preparation (Context, prelude, freeing the old one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.common import (
    Budget,
    Row,
    Summary,
    at_most,
    cut_note,
    failure_note,
    median,
    request,
    run_once,
    started_pool,
    summarize,
)
from bench.jsbare import PrepareTimes, time_prepare
from bench.rawworker import RawWorker, Split, run_frame
from runtime.bytecode import compile_prelude
from runtime.host import Host
from runtime.model import RunStatus
from runtime.pool import WorkerPool
from runtime.worker import build_prelude

SECTION = "1 overhead"
RUNS = 2_000
IDLE_RUNS = 300
WARMUP_RUNS = 100
PRELUDE_SAMPLES = 200
RAW_RUNS = 500
TARGET_P50_MS = 1.0
TARGET = f"<= {TARGET_P50_MS:g} ms"


async def _until_idle(pool: WorkerPool, budget: Budget) -> None:
    # The pool offers no event for "every worker is ready": poll its stats.
    while pool.stats().idle < pool.config.size and budget.left():  # noqa: ASYNC110
        await asyncio.sleep(0.0002)


async def _latencies(pool: WorkerPool, budget: Budget, count: int, *, idle: bool) -> list[float]:
    """Seconds per run of up to `count` sequential trivial runs."""
    run, host = request("1", wall_time_s=5.0), Host()
    samples: list[float] = []
    while len(samples) < count and budget.left():
        if idle:
            await _until_idle(pool, budget)
        result, seconds = await run_once(pool, run, host)
        if result.status is not RunStatus.SUCCESS:
            raise RuntimeError(f"trivial run failed: {failure_note(result)}")
        samples.append(seconds)
    return samples


def _stat_rows(key: str, label: str, stats: Summary, note: str) -> list[Row]:
    return [
        Row(f"{key}.p50", SECTION, f"{label} p50", stats.p50, "ms",
            TARGET, at_most(stats.p50, TARGET_P50_MS), note or f"n={stats.count}"),
        Row(f"{key}.p99", SECTION, f"{label} p99", stats.p99, "ms"),
        Row(f"{key}.mean", SECTION, f"{label} mean", stats.mean, "ms"),
    ]  # fmt: skip


async def _pool_rows(size: int, budget: Budget) -> list[Row]:
    pool = await started_pool(size)
    try:
        await _latencies(pool, budget.sub(1.0), WARMUP_RUNS, idle=False)
        b2b_budget = budget.sub(budget.remaining() - 1.2)
        back_to_back = await _latencies(pool, b2b_budget, RUNS, idle=False)
        idle_budget = budget.sub(1.2)
        idle = await _latencies(pool, idle_budget, IDLE_RUNS, idle=True)
    finally:
        await pool.close()
    key, label = f"overhead.pool{size}", f"pool={size}"
    stats = summarize(idle)
    return [
        *_stat_rows(key, f"{label} back-to-back", summarize(back_to_back),
                    cut_note(b2b_budget, len(back_to_back), RUNS)),
        Row(f"{key}.idle.p50", SECTION, f"{label} idle worker p50", stats.p50, "ms",
            TARGET, at_most(stats.p50, TARGET_P50_MS),
            cut_note(idle_budget, len(idle), IDLE_RUNS) or f"n={stats.count}"),
        Row(f"{key}.idle.p99", SECTION, f"{label} idle worker p99", stats.p99, "ms"),
    ]  # fmt: skip


def _prepare_samples(budget: Budget) -> list[PrepareTimes]:
    prelude = compile_prelude(build_prelude())  # what the workers load (section 6 compares)
    samples: list[PrepareTimes] = []
    while len(samples) < PRELUDE_SAMPLES and budget.left():
        samples.append(time_prepare(prelude))
    return samples


def _prepare_rows(samples: Sequence[PrepareTimes], note: str) -> list[Row]:
    def ms(values: Sequence[float]) -> float:
        return median(values) * 1000

    eval_ms = ms([s.prelude for s in samples])
    total_ms = ms([s.create + s.prelude + s.free for s in samples])
    return [
        Row("prepare.prelude_eval", SECTION, "Context prep: prelude load (median)", eval_ms,
            "ms", note=note or f"n={len(samples)}"),
        Row("prepare.create", SECTION, "Context prep: Context() + 7 callables", ms(
            [s.create for s in samples]), "ms"),
        Row("prepare.free", SECTION, "Context prep: freeing a used Context", ms(
            [s.free for s in samples]), "ms"),
        Row("prepare.total", SECTION, "Context prep: total per run", total_ms, "ms"),
    ]  # fmt: skip


def _raw_split(budget: Budget) -> Split:
    frame, split = run_frame(request("1", wall_time_s=5.0)), Split()
    with RawWorker() as worker:
        while len(split.to_result) < RAW_RUNS and budget.left():
            worker.run(frame, split)
    return split


def _raw_rows(split: Split, note: str) -> list[Row]:
    result, ready = summarize(split.to_result), summarize(split.to_ready)
    return [
        Row("raw.to_result.p50", SECTION, "raw worker (no pool): run -> result p50", result.p50,
            "ms", note=note or f"n={result.count}; the worker's share of a run"),
        Row("raw.to_ready.p50", SECTION, "raw worker (no pool): result -> ready p50", ready.p50,
            "ms", note="next Context prepared in the worker process"),
    ]  # fmt: skip


async def run_section(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """Trivial-run latency with 1 and 2 workers, then where a run's time goes."""
    prepare_budget = budget.sub(1.5)
    samples = _prepare_samples(prepare_budget)
    prepare = _prepare_rows(samples, cut_note(prepare_budget, len(samples), PRELUDE_SAMPLES))
    raw_budget = budget.sub(1.5)
    split = _raw_split(raw_budget)
    raw = _raw_rows(split, cut_note(raw_budget, len(split.to_result), RAW_RUNS))
    rows = await _pool_rows(1, budget.sub(9.0))
    rows += await _pool_rows(2, budget.sub(budget.remaining()))
    return rows + raw + prepare
