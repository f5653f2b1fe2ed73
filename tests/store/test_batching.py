"""The group-commit writer on its own: batches, retries, backpressure, flush, loss count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import create_engine
from gateway.store.batching import BatchLimits, BatchWriter

ITEMS = MetaData()
items = Table("items", ITEMS, Column("id", String(36), primary_key=True), Column("n", Integer))


class Seen:
    """What the writer reported, and an event per outcome."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, int]] = []
        self.events = {name: asyncio.Event() for name in ("written", "failed", "lost")}

    def __call__(self, outcome: str, rows: int) -> None:
        self.reports.append((outcome, rows))
        self.events[outcome].set()


@pytest.fixture
async def bare(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database: `items` does not exist until a test creates it."""
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def create_items(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(ITEMS.create_all)


async def stored(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {row.id: row.n for row in await connection.execute(select(items))}


def writer(engine: AsyncEngine, seen: Seen, **limits: Any) -> BatchWriter[int]:
    options: dict[str, Any] = {"interval_s": 3600.0, "retry_base_s": 0.001, "retry_max_s": 0.01}
    return BatchWriter(
        engine,
        items,
        lambda n: {"id": f"id-{n:04d}", "n": n},
        limits=BatchLimits(**{**options, **limits}),
        on_batch=seen,
    )


async def submit(batch: BatchWriter[int], *numbers: int) -> None:
    for n in numbers:
        await batch.submit(f"id-{n:04d}", n)


async def test_a_full_batch_is_written_in_one_transaction(bare: AsyncEngine) -> None:
    await create_items(bare)
    seen = Seen()
    batch = writer(bare, seen, batch_max=3)
    batch.start()
    await submit(batch, 1, 2)
    assert batch.pending() == [1, 2]  # waiting for company (the interval is long)
    assert await stored(bare) == {}
    await submit(batch, 3)
    await seen.events["written"].wait()
    assert seen.reports == [("written", 3)]
    assert await stored(bare) == {"id-0001": 1, "id-0002": 2, "id-0003": 3}
    assert batch.pending() == []
    assert await batch.close() == 0


async def test_close_flushes_everything_queued(bare: AsyncEngine) -> None:
    await create_items(bare)
    seen = Seen()
    batch = writer(bare, seen, batch_max=2)
    batch.start()
    await submit(batch, *range(5))
    assert await batch.close() == 0
    assert await stored(bare) == {f"id-{n:04d}": n for n in range(5)}
    assert sum(rows for outcome, rows in seen.reports if outcome == "written") == 5
    await submit(batch, 9)  # after close: written at once
    assert (await stored(bare))["id-0009"] == 9


async def test_a_failing_store_is_retried_and_nothing_is_written_twice(bare: AsyncEngine) -> None:
    seen = Seen()
    batch = writer(bare, seen, batch_max=2)
    batch.start()
    await submit(batch, 1, 2)  # `items` is missing: the insert fails
    await seen.events["failed"].wait()
    assert batch.pending() == [1, 2]  # kept, still readable
    async with bare.begin() as connection:  # as if a commit had happened, its answer lost
        await connection.run_sync(ITEMS.create_all)
        await connection.execute(insert(items).values(id="id-0001", n=1))
    await batch.flush()
    assert await stored(bare) == {"id-0001": 1, "id-0002": 2}
    assert batch.pending() == []
    assert await batch.close() == 0


async def test_a_full_queue_makes_submit_wait(bare: AsyncEngine) -> None:
    seen = Seen()
    batch = writer(bare, seen, batch_max=1, max_pending=2)
    batch.start()
    await submit(batch, 1, 2)
    await seen.events["failed"].wait()
    third = asyncio.create_task(submit(batch, 3))
    seen.events["failed"].clear()
    await seen.events["failed"].wait()  # the writer failed again; the third still waits
    assert not third.done()
    assert batch.pending() == [1, 2]
    await create_items(bare)
    await third
    assert await batch.close() == 0
    assert await stored(bare) == {"id-0001": 1, "id-0002": 2, "id-0003": 3}


async def test_rows_the_store_never_took_are_counted_lost_at_close(bare: AsyncEngine) -> None:
    seen = Seen()
    batch = writer(bare, seen, batch_max=5)
    batch.start()
    await submit(batch, 1, 2)
    assert await batch.close(grace_s=0.05) == 2
    assert ("lost", 2) in seen.reports
    assert batch.pending() == []


async def test_on_a_sqlite_file_a_batch_takes_one_thread_hop(bare: AsyncEngine) -> None:
    """SQLite: the batch goes through the writer's own connection in one thread hop, not
    through aiosqlite (a hop per statement); PostgreSQL: through the async engine."""
    await create_items(bare)
    through_engine: list[str] = []
    event.listen(
        bare.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: through_engine.append(statement),
    )
    seen = Seen()
    batch = writer(bare, seen, batch_max=3)
    batch.start()
    await submit(batch, 1, 2, 3)
    await seen.events["written"].wait()
    inserts = [s for s in through_engine if s.startswith("INSERT")]
    assert len(inserts) == (0 if bare.url.get_backend_name() == "sqlite" else 1)
    assert await stored(bare) == {"id-0001": 1, "id-0002": 2, "id-0003": 3}
    assert await batch.close() == 0


async def test_a_column_left_to_its_default_gets_it(bare: AsyncEngine) -> None:
    stamped = Table(
        "stamped",
        MetaData(),
        Column("id", String(36), primary_key=True),
        Column("n", Integer, default=7),
    )
    async with bare.begin() as connection:
        await connection.run_sync(stamped.metadata.create_all)
    seen = Seen()
    batch: BatchWriter[int] = BatchWriter(bare, stamped, lambda n: {"id": f"id-{n}"}, on_batch=seen)
    batch.start()
    await batch.submit("id-1", 1)
    assert await batch.close() == 0
    async with bare.connect() as connection:
        assert (await connection.execute(select(stamped))).all() == [("id-1", 7)]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        BatchLimits(batch_max=10, max_pending=5)


async def test_close_writes_what_a_cancelled_writer_left(bare: AsyncEngine) -> None:
    await create_items(bare)
    batch = writer(bare, Seen(), batch_max=5)
    batch.start()
    await submit(batch, 1, 2)
    # A signal ending the loop cancels every task before the app's cleanup runs.
    for task in asyncio.all_tasks():
        if task.get_name() == "batch-writer":
            task.cancel()
    assert await batch.close() == 0
    assert await stored(bare) == {"id-0001": 1, "id-0002": 2}
