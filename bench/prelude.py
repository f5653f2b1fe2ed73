"""Section 6: the prelude as bytecode against its source, side by side in one run.

Both ways are measured interleaved, so load on a shared machine hits them alike:
1. a Context's preparation in this process (create, load the prelude, free), median;
2. trivial runs (`1`) per second through a pool of one worker per CPU at concurrency 8, one
   pool loading bytecode and one evaluating the source (`PoolConfig.prelude_bytecode`), in
   alternating rounds.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence

from bench.common import Budget, Row, failure_note, median, request, run_once
from bench.jsbare import PrepareTimes, time_prepare
from runtime.bytecode import Prelude, SourcePrelude, compile_prelude
from runtime.host import Host
from runtime.model import RunStatus
from runtime.pool import PoolConfig, WorkerPool
from runtime.worker import build_prelude

SECTION = "6 prelude"
PREPARE_SAMPLES = 400
ROUNDS = 3
ROUND_S = 1.5
CONCURRENCY = 8
WAYS = ("source", "bytecode")


def _preludes() -> dict[str, Prelude]:
    source = build_prelude()
    bytecode = compile_prelude(source)
    if bytecode.kind != "bytecode":
        raise RuntimeError("this installation cannot load the prelude as bytecode")
    return {"source": SourcePrelude(source), "bytecode": bytecode}


def _prepare_rows(budget: Budget) -> list[Row]:
    preludes = _preludes()
    samples: dict[str, list[PrepareTimes]] = {way: [] for way in WAYS}
    while len(samples["bytecode"]) < PREPARE_SAMPLES and budget.left():
        for way in WAYS:
            samples[way].append(time_prepare(preludes[way]))
    rows: list[Row] = []
    totals: dict[str, float] = {}
    for way in WAYS:
        load = median([s.prelude for s in samples[way]]) * 1000
        totals[way] = median([s.create + s.prelude + s.free for s in samples[way]]) * 1000
        rows += [
            Row(f"prelude.{way}.load", SECTION, f"Context prep ({way}): prelude load", load,
                "ms", note=f"n={len(samples[way])}"),
            Row(f"prelude.{way}.total", SECTION, f"Context prep ({way}): total per run",
                totals[way], "ms"),
        ]  # fmt: skip
    speedup = totals["source"] / totals["bytecode"]
    return [*rows, Row("prelude.prepare_speedup", SECTION, "Context prep: source / bytecode",
                       speedup, "x")]  # fmt: skip


async def _round(pool: WorkerPool, seconds: float) -> tuple[int, float]:
    """Trivial runs done by `CONCURRENCY` loops in about `seconds`, and the wall time."""
    run, host = request("1", wall_time_s=5.0), Host()
    deadline = time.perf_counter() + seconds
    done = 0

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            result, _ = await run_once(pool, run, host)
            if result.status is not RunStatus.SUCCESS:
                raise RuntimeError(f"trivial run failed: {failure_note(result)}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    return done, time.perf_counter() - started


async def _throughput_rows(budget: Budget) -> list[Row]:
    size = os.cpu_count() or 1
    pools = {way: WorkerPool(PoolConfig(size=size, prelude_bytecode=way == "bytecode"))
             for way in WAYS}  # fmt: skip
    runs = dict.fromkeys(WAYS, 0)
    seconds = dict.fromkeys(WAYS, 0.0)
    try:
        for pool in pools.values():
            await pool.start()
            await _round(pool, 0.3)  # warm-up
        for _ in range(ROUNDS):
            for way in WAYS:
                if budget.remaining() > ROUND_S:
                    done, elapsed = await _round(pools[way], ROUND_S)
                    runs[way] += done
                    seconds[way] += elapsed
    finally:
        for pool in pools.values():
            await pool.close()
    rates = {way: runs[way] / seconds[way] if runs[way] else math.nan for way in WAYS}
    note = f"pool size {size}, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds"
    return [
        *(Row(f"prelude.{way}.runs_per_s", SECTION, f"trivial runs/s ({way})", rates[way],
              "runs/s", note=f"n={runs[way]}; {note}") for way in WAYS),
        Row("prelude.runs_speedup", SECTION, "trivial runs/s: bytecode / source",
            rates["bytecode"] / rates["source"], "x"),
    ]  # fmt: skip


async def run_section(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """Context preparation and trivial runs/s, prelude as source and as bytecode."""
    rows = _prepare_rows(budget.sub(4.0))
    return rows + await _throughput_rows(budget.sub(budget.remaining()))
