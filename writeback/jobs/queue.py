"""The durable job queue in the metadata store: enqueue, claim with a lease, heartbeat, end.

One code path on SQLite and PostgreSQL (decision 0022). A claim first reads a candidate
with `SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL: replicas skip each other's candidates
instead of queueing on them; SQLite ignores the clause, its writer is single anyway), then
takes it with a conditional UPDATE that only succeeds while the job is still claimable:
queued and due, or running with a lapsed lease. Every later write of the holder is
conditional on its lease owner, so a holder that lost its lease changes nothing.

"Now" is the caller's clock (`gateway.store.tables` convention), which tests replace.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import Conflict, NotFound
from gateway.identity.principal import Principal
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from writeback.jobs.models import Job, JobSpec, JobStatus, Progress, Trigger, job_from_row
from writeback.jobs.tables import job_runs, jobs

_QUEUED = JobStatus.QUEUED.value
_RUNNING = JobStatus.RUNNING.value


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat learnt: whether the lease is still ours, whether to cancel."""

    held: bool
    cancel: bool


def _claimable(now: datetime) -> Any:
    return or_(
        and_(jobs.c.status == _QUEUED, jobs.c.run_after <= now),
        and_(jobs.c.status == _RUNNING, jobs.c.lease_expires_at <= now),
    )


class JobQueue:
    """The jobs table as a queue, and the reads of the job endpoints."""

    def __init__(self, engine: AsyncEngine, *, max_attempts: int) -> None:
        self._engine = engine
        self.max_attempts = max_attempts
        # Where this process starts its round of customers: turns rotate for fairness.
        self._turn = itertools.count()

    async def enqueue(
        self,
        principal: Principal,
        spec: JobSpec,
        now: datetime,
        *,
        trigger: Trigger = Trigger.API,
        schedule_id: str | None = None,
        connection: AsyncConnection | None = None,
    ) -> str:
        """Store a queued job (in `connection`'s transaction when given); return its id."""
        job_id = new_id()
        statement = insert(jobs).values(
            id=job_id,
            customer_id=principal.customer_id,
            user_id=principal.user_id,
            connector_guid=spec.connector_guid,
            account_id=spec.account_id,
            report=spec.report,
            parameters=spec.parameters,
            send_to_dataset=spec.send_to_dataset,
            trigger=trigger.value,
            schedule_id=schedule_id,
            status=_QUEUED,
            attempts=0,
            max_attempts=self.max_attempts,
            run_after=now,
            cancel_requested=False,
            progress=Progress().document(),
            created_at=now,
        )
        if connection is not None:
            await connection.execute(statement)
            return job_id
        async with self._engine.begin() as own:
            await own.execute(statement)
        return job_id

    async def get(self, principal: Principal, job_id: str) -> Job:
        """A job the caller may see: its own, or any of its customer's for an admin.

        Raises:
            NotFound: no such job for this caller.
        """
        query = select(jobs).where(jobs.c.id == job_id, jobs.c.customer_id == principal.customer_id)
        if not principal.is_admin_of(principal.customer_id):
            query = query.where(jobs.c.user_id == principal.user_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound("no such job")
        return job_from_row(row)

    async def load(self, job_id: str) -> Job:
        """A job by id, for the runner (no caller).

        Raises:
            NotFound: the job is gone (its user was deleted).
        """
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if row is None:
            raise NotFound("no such job")
        return job_from_row(row)

    async def run_ids(
        self, principal: Principal, job_id: str, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        """A page of the ids of the job's runs, first attempt first.

        Raises:
            NotFound: no such job for this caller.
        """
        job = await self.get(principal, job_id)
        query = select(job_runs).where(
            job_runs.c.job_id == job.id, job_runs.c.customer_id == job.customer_id
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, job_runs.c.id, limit, cursor)
        return [row.run_id for row in rows], next_cursor

    async def request_cancel(self, principal: Principal, job_id: str, now: datetime) -> Job:
        """Cancel a queued job at once, or ask the holder of a running one to stop it.

        Raises:
            NotFound: no such job for this caller.
            Conflict: the job has already ended.
        """
        job = await self.get(principal, job_id)
        async with self._engine.begin() as connection:
            queued = await connection.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status == _QUEUED)
                .values(
                    status=JobStatus.CANCELLED.value,
                    cancel_requested=True,
                    finished_at=now,
                    error=_cancelled(),
                )
            )
            if queued.rowcount != 1:
                await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job.id, jobs.c.status == _RUNNING)
                    .values(cancel_requested=True)
                )
        current = await self.get(principal, job_id)
        if current.status.ended and not current.cancel_requested:
            raise Conflict(f"the job has already ended ({current.status.value})")
        return current

    async def claim(
        self, owner: str, now: datetime, lease_s: float, *, per_customer: int
    ) -> Job | None:
        """Take the next job to run, fairly across customers, or None.

        Customers take turns; one that already runs `per_customer` jobs (on any replica)
        is skipped, so a flood of one customer's jobs never starves another's. A running job
        whose lease lapsed (its gateway died) is claimed again as a new attempt; one with no
        attempts left ends `failed`, one asked to cancel ends `cancelled`.
        """
        async with self._engine.connect() as connection:
            busy: dict[str, int] = dict(
                (
                    await connection.execute(
                        select(jobs.c.customer_id, func.count())
                        .where(jobs.c.status == _RUNNING, jobs.c.lease_expires_at > now)
                        .group_by(jobs.c.customer_id)
                    )
                ).all()
            )
            waiting = sorted(
                (
                    await connection.execute(
                        select(jobs.c.customer_id).where(_claimable(now)).distinct()
                    )
                ).scalars()
            )
        if not waiting:
            return None
        start = next(self._turn) % len(waiting)
        for customer_id in waiting[start:] + waiting[:start]:
            if busy.get(customer_id, 0) >= per_customer:
                continue
            job = await self._claim_of(customer_id, owner, now, lease_s)
            if job is not None:
                return job
        return None

    async def _claim_of(
        self, customer_id: str, owner: str, now: datetime, lease_s: float
    ) -> Job | None:
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    select(jobs)
                    .where(jobs.c.customer_id == customer_id, _claimable(now))
                    .order_by(jobs.c.run_after, jobs.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            values: dict[str, Any] = {
                "status": _RUNNING,
                "lease_owner": owner,
                "lease_expires_at": now + timedelta(seconds=lease_s),
                "attempts": row.attempts + 1,
                "started_at": row.started_at or now,
            }
            if row.status == _RUNNING and row.cancel_requested:
                values = _ended(JobStatus.CANCELLED, now, _cancelled())
            elif row.status == _RUNNING and row.attempts >= row.max_attempts:
                message = f"the gateway running attempt {row.attempts} stopped; no attempts left"
                values = _ended(JobStatus.FAILED, now, {"code": "lease_lapsed", "message": message})
            taken = await connection.execute(
                update(jobs)
                .where(
                    jobs.c.id == row.id,
                    jobs.c.status == row.status,
                    jobs.c.attempts == row.attempts,
                    _claimable(now),
                )
                .values(**values)
            )
            if taken.rowcount != 1 or values["status"] != _RUNNING:
                return None
        return replace(
            job_from_row(row),
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=values["lease_expires_at"],
            attempts=values["attempts"],
            started_at=values["started_at"],
        )

    async def heartbeat(
        self, job_id: str, owner: str, now: datetime, lease_s: float, progress: Progress
    ) -> Beat:
        """Renew the lease and store the progress; say whether to go on."""
        async with self._engine.begin() as connection:
            renewed = await connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == _RUNNING)
                .values(
                    lease_expires_at=now + timedelta(seconds=lease_s),
                    progress=progress.document(),
                )
            )
            cancel = (
                await connection.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id))
            ).scalar()
        return Beat(renewed.rowcount == 1, bool(cancel))

    async def record_run(self, job: Job, run_id: str, attempt: int, now: datetime) -> None:
        """Link one attempt's run to the job."""
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(job_runs).values(
                    id=new_id(),
                    customer_id=job.customer_id,
                    job_id=job.id,
                    run_id=run_id,
                    attempt=attempt,
                    created_at=now,
                )
            )

    async def finish(
        self,
        job_id: str,
        owner: str,
        status: JobStatus,
        now: datetime,
        progress: Progress,
        *,
        error: dict[str, Any] | None = None,
        version: int | None = None,
        dataset_id: str | None = None,
    ) -> bool:
        """End the job (while this holder has it); return whether it did."""
        return await self._holder_write(
            job_id,
            owner,
            {
                **_ended(status, now, error),
                "progress": progress.document(),
                "version": version,
                "dataset_id": dataset_id,
            },
        )

    async def retry(
        self,
        job_id: str,
        owner: str,
        run_after: datetime,
        progress: Progress,
        error: dict[str, Any],
        *,
        version: int | None,
    ) -> bool:
        """Queue the job again after a transient failure, to run at `run_after`."""
        return await self._holder_write(
            job_id,
            owner,
            {
                "status": _QUEUED,
                "run_after": run_after,
                "lease_owner": None,
                "lease_expires_at": None,
                "progress": progress.document(),
                "error": error,
                "version": version,
            },
        )

    async def release(self, job_id: str, owner: str, now: datetime) -> bool:
        """Give a job back unfinished (the gateway is stopping): queued at once, and the
        attempt it was on does not count."""
        async with self._engine.begin() as connection:
            released = await connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == _RUNNING)
                .values(
                    status=_QUEUED,
                    run_after=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=jobs.c.attempts - 1,
                )
            )
        return released.rowcount == 1

    async def _holder_write(self, job_id: str, owner: str, values: dict[str, Any]) -> bool:
        async with self._engine.begin() as connection:
            written = await connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == _RUNNING)
                .values(**values)
            )
        return written.rowcount == 1


def _cancelled() -> dict[str, Any]:
    return {"code": "cancelled", "message": "the job was cancelled"}


def _ended(status: JobStatus, now: datetime, error: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "status": status.value,
        "finished_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "error": error,
    }
