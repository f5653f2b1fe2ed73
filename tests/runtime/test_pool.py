"""The pool's queue: fair across tenants, bounded, and clean when callers give up."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.host import Host
from runtime.model import RunStatus
from runtime.pool import PoolBusy, PoolConfig, WorkerPool
from tests.conftest import make_request


async def _run(pool: WorkerPool, tenant: str, label: str, done: list[str], ms: int = 60) -> None:
    request = make_request(f"DOMO.sleep({ms})").model_copy(update={"tenant": tenant})
    result = await pool.run(request, Host())
    assert result.status is RunStatus.SUCCESS
    done.append(label)


async def test_waiting_runs_take_turns_across_tenants() -> None:
    pool = WorkerPool(PoolConfig(size=1))
    await pool.start()
    try:
        done: list[str] = []
        tasks = [asyncio.create_task(_run(pool, "acme", f"acme{i}", done)) for i in range(4)]
        await asyncio.sleep(0.01)  # acme's runs are queued first
        tasks.append(asyncio.create_task(_run(pool, "globex", "globex0", done)))
        await asyncio.gather(*tasks)
        # globex waits behind at most one more acme run, not behind all of them.
        assert done.index("globex0") <= 2
    finally:
        await pool.close()


async def test_a_tenant_at_its_in_flight_limit_leaves_workers_to_others() -> None:
    pool = WorkerPool(PoolConfig(size=2, max_in_flight_per_tenant=1))
    await pool.start()
    try:
        done: list[str] = []
        started = time.monotonic()
        acme = [asyncio.create_task(_run(pool, "acme", f"acme{i}", done, 200)) for i in range(2)]
        await asyncio.sleep(0.01)
        await _run(pool, "globex", "globex0", done, 10)
        # globex got the second worker at once although acme had a run waiting.
        assert time.monotonic() - started < 0.2
        assert done == ["globex0"]
        await asyncio.gather(*acme)
    finally:
        await pool.close()


async def test_full_queues_refuse_with_retry_after() -> None:
    pool = WorkerPool(PoolConfig(size=1, max_waiting_per_tenant=1, max_waiting=2))
    await pool.start()
    try:
        done: list[str] = []
        running = asyncio.create_task(_run(pool, "acme", "a0", done, 300))
        await asyncio.sleep(0.02)
        waiting = asyncio.create_task(_run(pool, "acme", "a1", done, 10))
        await asyncio.sleep(0.02)
        with pytest.raises(PoolBusy) as tenant_full:
            await _run(pool, "acme", "a2", done)
        assert tenant_full.value.tenant_full
        assert tenant_full.value.retry_after > 0
        other = asyncio.create_task(_run(pool, "globex", "g0", done, 10))
        await asyncio.sleep(0.02)
        with pytest.raises(PoolBusy) as pool_full:
            await _run(pool, "initech", "i0", done)
        assert not pool_full.value.tenant_full
        await asyncio.gather(running, waiting, other)
        assert sorted(done) == ["a0", "a1", "g0"]
    finally:
        await pool.close()


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    pool = WorkerPool(PoolConfig(size=1))
    await pool.start()
    try:
        done: list[str] = []
        running = asyncio.create_task(_run(pool, "acme", "a0", done, 150))
        await asyncio.sleep(0.02)
        impatient = asyncio.create_task(_run(pool, "globex", "g0", done, 10))
        await asyncio.sleep(0.02)
        assert pool.stats().waiting == 1
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        await running
        await _run(pool, "initech", "i0", done, 10)
        assert done == ["a0", "i0"]
        for _ in range(100):  # the worker is busy until it has prepared its next Context
            if pool.stats().busy == 0:
                break
            await asyncio.sleep(0.01)
        stats = pool.stats()
        assert (stats.waiting, stats.busy, stats.idle) == (0, 0, 1)
    finally:
        await pool.close()
