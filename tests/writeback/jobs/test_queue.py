"""The queue on SQLite and PostgreSQL: exclusive claims, leases, fairness, release, retry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.identity.principal import Principal, Role
from tests.dbfixtures import make_customer, make_user
from writeback.jobs.models import JobSpec, JobStatus, Progress
from writeback.jobs.queue import JobQueue

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE_S = 30.0


async def people(engine: AsyncEngine, customers: int = 1) -> list[Principal]:
    """One member of each of `customers` new customers."""
    found = []
    async with engine.begin() as connection:
        for _ in range(customers):
            customer_id = await make_customer(connection)
            user_id = await make_user(connection, customer_id)
            found.append(Principal(user_id, customer_id, Role.MEMBER))
    return found


async def test_each_job_is_claimed_once_by_concurrent_claimers(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    queues = [JobQueue(engine, max_attempts=3) for _ in range(4)]
    ids = {await queues[0].enqueue(someone, JobSpec("guid"), NOW) for _ in range(12)}

    async def drain(queue: JobQueue, owner: str) -> list[str]:
        taken = []
        while (job := await queue.claim(owner, NOW, LEASE_S, per_customer=100)) is not None:
            taken.append(job.id)
        return taken

    claimed = await asyncio.gather(*(drain(q, f"owner-{i}") for i, q in enumerate(queues)))

    every = [job_id for taken in claimed for job_id in taken]
    assert sorted(every) == sorted(ids)  # each exactly once


async def test_a_lapsed_lease_is_claimed_again_as_the_next_attempt(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=2)
    job_id = await queue.enqueue(someone, JobSpec("guid"), NOW)
    first = await queue.claim("dead", NOW, LEASE_S, per_customer=5)
    assert first is not None

    early = await queue.claim(
        "alive", NOW + timedelta(seconds=LEASE_S - 1), LEASE_S, per_customer=5
    )
    lapsed = NOW + timedelta(seconds=LEASE_S)
    second = await queue.claim("alive", lapsed, LEASE_S, per_customer=5)

    assert early is None
    assert second is not None
    assert (second.id, second.attempts, second.lease_owner) == (job_id, 2, "alive")
    # The dead holder's late writes change nothing.
    assert not await queue.finish(job_id, "dead", JobStatus.SUCCEEDED, lapsed, Progress())
    assert (await queue.heartbeat(job_id, "dead", lapsed, LEASE_S, Progress())).held is False
    # With no attempts left, a lapsed lease ends the job failed.
    gone = lapsed + timedelta(seconds=LEASE_S)
    assert await queue.claim("third", gone, LEASE_S, per_customer=5) is None
    job = await queue.get(someone, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error["code"] == "lease_lapsed"


async def test_customers_take_turns_and_are_capped(engine: AsyncEngine) -> None:
    flooder, other = await people(engine, 2)
    queue = JobQueue(engine, max_attempts=3)
    for _ in range(5):
        await queue.enqueue(flooder, JobSpec("guid"), NOW)
    later = NOW + timedelta(seconds=1)
    theirs = await queue.enqueue(other, JobSpec("guid"), later)

    claimed = [await queue.claim("me", later, LEASE_S, per_customer=2) for _ in range(4)]

    by_customer = [job.customer_id if job else None for job in claimed]
    assert by_customer.count(flooder.customer_id) == 2  # the cap
    assert theirs in [job.id for job in claimed if job]
    assert by_customer[-1] is None


async def test_release_and_retry_queue_the_job_again(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=3)
    job_id = await queue.enqueue(someone, JobSpec("guid"), NOW)
    await queue.claim("me", NOW, LEASE_S, per_customer=5)

    assert await queue.release(job_id, "me", NOW)
    released = await queue.get(someone, job_id)
    again = await queue.claim("me", NOW, LEASE_S, per_customer=5)
    assert again is not None
    retry_at = NOW + timedelta(seconds=90)
    assert await queue.retry(
        job_id, "me", retry_at, Progress(http_calls=3), {"code": "x"}, version=None
    )
    too_early = await queue.claim("me", retry_at - timedelta(seconds=1), LEASE_S, per_customer=5)
    retried = await queue.get(someone, job_id)

    assert (released.status, released.attempts) == (JobStatus.QUEUED, 0)
    assert again.attempts == 1
    assert too_early is None
    assert (retried.status, retried.run_after, retried.progress.http_calls) == (
        JobStatus.QUEUED,
        retry_at,
        3,
    )


async def test_a_running_job_asked_to_cancel_says_so_at_the_heartbeat(engine: AsyncEngine) -> None:
    [someone] = await people(engine)
    queue = JobQueue(engine, max_attempts=3)
    job_id = await queue.enqueue(someone, JobSpec("guid"), NOW)
    await queue.claim("me", NOW, LEASE_S, per_customer=5)

    before = await queue.heartbeat(job_id, "me", NOW, LEASE_S, Progress(rows_read=5))
    asked = await queue.request_cancel(someone, job_id, NOW)
    after = await queue.heartbeat(job_id, "me", NOW, LEASE_S, Progress(rows_read=9))

    assert (before.held, before.cancel) == (True, False)
    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    assert (after.held, after.cancel) == (True, True)
    assert (await queue.get(someone, job_id)).progress.rows_read == 9
