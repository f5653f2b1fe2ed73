"""The runner on SQLite and PostgreSQL: shutdown releases, cancel at the heartbeat, retries."""

from __future__ import annotations

import asyncio
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.writeback.jobs.test_queue import NOW, people
from writeback.jobs.execute import JobExecutor, Outcome
from writeback.jobs.models import Job, JobSpec, JobStatus, Progress
from writeback.jobs.policy import RetryPolicy
from writeback.jobs.queue import JobQueue
from writeback.jobs.runner import JobRunner, RunnerLimits

QUICK = RunnerLimits(concurrency=2, per_customer=2, lease_s=30.0, heartbeat_s=0.02, poll_s=0.02)


class Attempts:
    """An executor whose attempts wait until the test answers them."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[Job] = asyncio.Queue()
        self.outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.cancelled = 0

    async def attempt(self, job: Job, progress: Progress) -> Outcome:
        progress.http_calls += 1
        await self.started.put(job)
        try:
            return await asyncio.shield(self.outcome)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def runner(queue: JobQueue, attempts: Attempts) -> JobRunner:
    """A runner of `attempts` with quick heartbeats and polls and no backoff."""
    return JobRunner(
        queue,
        cast(JobExecutor, attempts),
        limits=QUICK,
        policy=RetryPolicy(base_s=0.0),
        clock=lambda: NOW,
    )


async def until_status(queue: JobQueue, job: Job, status: JobStatus) -> Job:
    """Poll the job until it has `status` (the test's timeout bounds it)."""
    while True:
        current = await queue.load(job.id)
        if current.status is status:
            return current
        await asyncio.sleep(0.01)


async def test_shutdown_releases_the_running_job(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=3)
    await queue.enqueue(someone, JobSpec("guid"), NOW)
    attempts = Attempts()
    first = runner(queue, attempts)
    first.start()
    job = await attempts.started.get()

    await first.close()

    released = await queue.load(job.id)
    assert (released.status, released.attempts, released.lease_owner) == (JobStatus.QUEUED, 0, None)
    assert attempts.cancelled == 1


async def test_a_cancel_asked_elsewhere_stops_the_attempt_at_the_heartbeat(
    engine: AsyncEngine,
) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=3)
    await queue.enqueue(someone, JobSpec("guid"), NOW)
    attempts = Attempts()
    holder = runner(queue, attempts)
    holder.start()
    try:
        job = await attempts.started.get()
        await queue.request_cancel(someone, job.id, NOW)  # another replica's request
        cancelled = await until_status(queue, job, JobStatus.CANCELLED)
    finally:
        await holder.close()

    assert attempts.cancelled == 1
    assert cancelled.progress.http_calls == 1
    assert cancelled.error == {"code": "cancelled", "message": "the job was cancelled"}


async def test_a_transient_outcome_is_retried_then_fails_after_the_last_attempt(
    engine: AsyncEngine,
) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=2)
    await queue.enqueue(someone, JobSpec("guid"), NOW)
    attempts = Attempts()
    attempts.outcome.set_result(Outcome("transient", {"code": "timeout", "message": "slow"}))
    holder = runner(queue, attempts)
    holder.start()
    try:
        job = await attempts.started.get()
        failed = await until_status(queue, job, JobStatus.FAILED)
    finally:
        await holder.close()

    assert failed.attempts == 2
    assert failed.error == {"code": "timeout", "message": "slow"}
