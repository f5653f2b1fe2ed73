"""Schedules: cron expressions in a time zone, and triggers on a dataset's new versions.

Each replica's scheduler looks for due schedules every tick. A due cron schedule is moved
to its next time with a conditional UPDATE (`WHERE next_run_at = <the time it read>`) in the
same transaction that queues its job: of several replicas only the one whose UPDATE changed
the row queues it, so each time fires exactly once. A dataset trigger does the same with
the dataset's version number (`seen_version`): a new version queues one job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from croniter import croniter
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.datasets.tables import datasets
from gateway.errors import NotFound
from gateway.identity.principal import Principal, Role
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from writeback.jobs.models import JobSpec, Trigger
from writeback.jobs.queue import JobQueue
from writeback.jobs.service import JobService, invalid
from writeback.jobs.tables import schedules

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored: a cron schedule or a dataset trigger, and the job it makes."""

    id: str
    customer_id: str
    user_id: str
    spec: JobSpec
    cron: str | None
    timezone: str | None
    next_run_at: datetime | None
    dataset_id: str | None
    created_at: datetime


def next_time(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time after `after` that `cron` names in `timezone` (as UTC-aware time).

    Raises:
        Invalid: the expression or the time zone is not valid.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(["timezone"], f"{timezone!r} is not an IANA time zone") from None
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise invalid(["cron"], f"{cron!r} is not a cron expression of five fields")
    found: datetime = croniter(cron, after.astimezone(zone)).get_next(datetime)
    return found.astimezone(after.tzinfo)


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row.id,
        customer_id=row.customer_id,
        user_id=row.user_id,
        spec=JobSpec(
            row.connector_guid, row.account_id, row.report, row.parameters, row.send_to_dataset
        ),
        cron=row.cron,
        timezone=row.timezone,
        next_run_at=row.next_run_at,
        dataset_id=row.dataset_id,
        created_at=row.created_at,
    )


class ScheduleService:
    """Schedules of a customer; and the scheduler tick that queues their jobs."""

    def __init__(
        self,
        engine: AsyncEngine,
        jobs: JobService,
        queue: JobQueue,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._jobs = jobs
        self._queue = queue
        self._clock = clock

    async def create(
        self,
        principal: Principal,
        spec: JobSpec,
        *,
        cron: str | None,
        timezone: str,
        dataset_id: str | None,
    ) -> Schedule:
        """Store a cron schedule (`cron` in `timezone`) or a trigger on `dataset_id`.

        Raises:
            Invalid: neither or both of `cron` and `dataset_id`, a bad expression or zone.
            NotFound: the dataset is not the caller's customer's; and as `JobService.check`.
        """
        if (cron is None) == (dataset_id is None):
            raise invalid(["cron"], "give either cron (with timezone) or dataset_id")
        now = self._clock()
        next_run_at = next_time(cron, timezone, now) if cron is not None else None
        await self._jobs.check(principal, spec)
        seen = None
        if dataset_id is not None:
            seen = await self._dataset_version(principal.customer_id, dataset_id)
            if seen is None:
                raise NotFound("no such dataset")
        schedule_id = new_id()
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(schedules).values(
                    id=schedule_id,
                    customer_id=principal.customer_id,
                    user_id=principal.user_id,
                    connector_guid=spec.connector_guid,
                    account_id=spec.account_id,
                    report=spec.report,
                    parameters=spec.parameters,
                    send_to_dataset=spec.send_to_dataset,
                    cron=cron,
                    timezone=timezone if cron is not None else None,
                    next_run_at=next_run_at,
                    dataset_id=dataset_id,
                    seen_version=seen,
                    created_at=now,
                )
            )
        return await self.get(principal, schedule_id)

    async def get(self, principal: Principal, schedule_id: str) -> Schedule:
        """A schedule of the caller's (or, for an admin, of its customer's).

        Raises:
            NotFound: no such schedule for this caller.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    self._visible(principal).where(schedules.c.id == schedule_id)
                )
            ).first()
        if row is None:
            raise NotFound("no such schedule")
        return _schedule(row)

    async def list_schedules(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Schedule], str | None]:
        """A page of the schedules the caller may see, oldest first."""
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(
                connection, self._visible(principal), schedules.c.id, limit, cursor
            )
        return [_schedule(row) for row in rows], next_cursor

    async def delete(self, principal: Principal, schedule_id: str) -> None:
        """Delete a schedule (jobs it queued stay).

        Raises:
            NotFound: no such schedule for this caller.
        """
        schedule = await self.get(principal, schedule_id)
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(schedules).where(
                    schedules.c.id == schedule.id, schedules.c.customer_id == schedule.customer_id
                )
            )

    @staticmethod
    def _visible(principal: Principal) -> Any:
        query = select(schedules).where(schedules.c.customer_id == principal.customer_id)
        if not principal.is_admin_of(principal.customer_id):
            query = query.where(schedules.c.user_id == principal.user_id)
        return query

    async def _dataset_version(self, customer_id: str, dataset_id: str) -> int | None:
        async with self._engine.connect() as connection:
            version: int | None = (
                await connection.execute(
                    select(datasets.c.current_version).where(
                        datasets.c.id == dataset_id, datasets.c.customer_id == customer_id
                    )
                )
            ).scalar()
        return version

    async def tick(self) -> int:
        """Queue the jobs of every due schedule and changed dataset; return how many."""
        now = self._clock()
        queued = 0
        async with self._engine.connect() as connection:
            due = list(
                await connection.execute(select(schedules).where(schedules.c.next_run_at <= now))
            )
            changed = list(
                await connection.execute(
                    select(schedules, datasets.c.current_version)
                    .join(
                        datasets,
                        (datasets.c.id == schedules.c.dataset_id)
                        & (datasets.c.customer_id == schedules.c.customer_id),
                    )
                    .where(datasets.c.current_version != schedules.c.seen_version)
                )
            )
        for row in due:
            following = next_time(row.cron, row.timezone, now)
            queued += await self._fire(
                row,
                Trigger.SCHEDULE,
                schedules.c.next_run_at == row.next_run_at,
                {"next_run_at": following},
            )
        for row in changed:
            queued += await self._fire(
                row,
                Trigger.DATASET,
                schedules.c.seen_version == row.seen_version,
                {"seen_version": row.current_version},
            )
        return queued

    async def _fire(self, row: Any, trigger: Trigger, seen: Any, values: dict[str, Any]) -> int:
        """Move the schedule on and queue its job, in one transaction, if no replica did."""
        schedule = _schedule(row)
        principal = Principal(schedule.user_id, schedule.customer_id, Role.MEMBER)
        async with self._engine.begin() as connection:
            moved = await connection.execute(
                update(schedules).where(schedules.c.id == schedule.id, seen).values(**values)
            )
            if moved.rowcount != 1:
                return 0
            job_id = await self._queue.enqueue(
                principal,
                schedule.spec,
                self._clock(),
                trigger=trigger,
                schedule_id=schedule.id,
                connection=connection,
            )
        log.info("schedule_fired", schedule_id=schedule.id, job_id=job_id, trigger=trigger.value)
        return 1


class Scheduler:
    """Ticks the schedules every `interval_s` until closed."""

    def __init__(
        self, service: ScheduleService, interval_s: float, on_queued: Callable[[], None]
    ) -> None:
        self._service = service
        self._interval_s = interval_s
        self._on_queued = on_queued
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start ticking."""
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                if await self._service.tick():
                    self._on_queued()
            except Exception:
                log.exception("schedule_tick_failed")
            await asyncio.sleep(self._interval_s)
