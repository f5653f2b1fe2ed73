"""Schedules fire exactly once across concurrent schedulers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.ids import new_id
from tests.writeback.jobs.test_queue import people
from writeback.jobs.queue import JobQueue
from writeback.jobs.schedules import ScheduleService, next_time
from writeback.jobs.service import JobService
from writeback.jobs.tables import jobs, schedules

NOW = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_next_time_follows_the_time_zone_across_daylight_saving() -> None:
    # 02:30 does not exist in Paris on 2026-03-29 (clocks jump from 02:00 to 03:00).
    assert next_time("30 2 * * *", "Europe/Paris", NOW) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert next_time("0 9 * * 1", "America/New_York", NOW) == datetime(
        2026, 3, 30, 13, 0, tzinfo=UTC
    )


async def test_concurrent_schedulers_queue_each_due_time_once(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(schedules).values(
                id=new_id(),
                customer_id=someone.customer_id,
                user_id=someone.user_id,
                connector_guid="guid",
                parameters={},
                cron="*/5 * * * *",
                timezone="UTC",
                next_run_at=NOW,
                created_at=NOW,
            )
        )
    clock = [NOW]
    replicas = [
        ScheduleService(
            engine,
            cast(JobService, None),  # ticking never checks jobs: they were checked when scheduled
            JobQueue(engine, max_attempts=3),
            clock=lambda: clock[0],
        )
        for _ in range(4)
    ]

    first = await asyncio.gather(*(r.tick() for r in replicas))
    clock[0] = NOW + timedelta(minutes=4)
    early = await asyncio.gather(*(r.tick() for r in replicas))
    clock[0] = NOW + timedelta(minutes=5)
    second = await asyncio.gather(*(r.tick() for r in replicas))

    assert (sum(first), sum(early), sum(second)) == (1, 0, 1)
    async with engine.connect() as connection:
        queued: list[Any] = list(await connection.execute(select(jobs.c.trigger)))
    assert [row.trigger for row in queued] == ["schedule", "schedule"]
