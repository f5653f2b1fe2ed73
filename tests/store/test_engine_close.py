"""Closing the engine at shutdown: connections still being given back are waited for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from gateway.store.engine import close_engine, create_engine


async def test_close_waits_for_a_connection_a_cancelled_task_gives_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    inside = asyncio.Event()

    async def busy() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT 1"))
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(busy())
    await inside.wait()
    # What a shutdown does to work still running: cancel it, without waiting for it.
    task.cancel()
    assert await close_engine(engine)
    assert pool.checkedout() == 0
    assert task.cancelled()
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


async def test_close_gives_up_after_the_grace_period(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    pool = engine.pool
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        assert not await close_engine(engine, grace_s=0.05)
    # The late connection went back to the old pool: close it there, as the engine would.
    await greenlet_spawn(pool.dispose)
