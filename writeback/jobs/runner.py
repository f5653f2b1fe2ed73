"""The job worker loop of one gateway process: claim, run with a heartbeat, end or retry.

Each process runs at most `concurrency` jobs at once, each under a lease it renews every
`heartbeat_s`; progress is written with the heartbeat. A heartbeat that finds the job asked
to cancel (by any replica) or the lease lost cancels the attempt, which kills its worker.
On shutdown the jobs in flight are released (queued again, the attempt not counted), never
lost; a process that dies without releasing leaves leases that lapse and are reclaimed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog
from sqlalchemy.exc import SQLAlchemyError

from gateway.store.ids import new_id
from writeback.jobs.execute import JobExecutor, Outcome
from writeback.jobs.models import Job, JobStatus, Progress
from writeback.jobs.policy import RetryPolicy
from writeback.jobs.queue import JobQueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    """How many jobs this process runs, per customer across replicas, and the lease."""

    concurrency: int = 4
    per_customer: int = 2
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    poll_s: float = 1.0


class _Stop(Exception):
    """Why an attempt was stopped from outside: cancelled, or the lease was lost."""

    def __init__(self, cancelled: bool) -> None:
        super().__init__("cancelled" if cancelled else "lease lost")
        self.cancelled = cancelled


class JobRunner:
    """Claims and runs jobs until closed."""

    def __init__(
        self,
        queue: JobQueue,
        executor: JobExecutor,
        *,
        limits: RunnerLimits,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._limits = limits
        self._policy = policy
        self._clock = clock
        self._owner = new_id()
        self._wake = asyncio.Event()
        self._active: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start claiming jobs."""
        self._loop = asyncio.create_task(self._claim_loop())

    def wake(self) -> None:
        """Look for work now (a job was queued, or a test moved the clock)."""
        self._wake.set()

    def cancel_here(self, job_id: str) -> None:
        """Stop a job this process runs at once (other replicas see it at their heartbeat)."""
        task = self._active.get(job_id)
        if task is not None:
            task.cancel(_CANCEL)

    async def close(self) -> None:
        """Stop claiming; release the jobs in flight (their workers are stopped)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._fill()
            except Exception:
                log.exception("job_claim_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._limits.poll_s)

    async def _fill(self) -> None:
        while len(self._active) < self._limits.concurrency:
            job = await self._queue.claim(
                self._owner,
                self._clock(),
                self._limits.lease_s,
                per_customer=self._limits.per_customer,
            )
            if job is None:
                return
            task = asyncio.create_task(self._run(job))
            self._active[job.id] = task
            task.add_done_callback(partial(self._done, job.id))

    def _done(self, job_id: str, _: asyncio.Task[None]) -> None:
        self._active.pop(job_id, None)
        self.wake()

    async def _run(self, job: Job) -> None:
        progress = Progress()
        log.info("job_started", job_id=job.id, attempt=job.attempts)
        attempt = asyncio.create_task(self._executor.attempt(job, progress))
        try:
            outcome = await self._beat_until_done(job, attempt, progress)
        except _Stop as stop:
            await self._stopped(job, progress, cancelled=stop.cancelled)
            return
        except asyncio.CancelledError as cancel:
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await attempt
            if _CANCEL in cancel.args:
                await asyncio.shield(self._stopped(job, progress, cancelled=True))
            else:  # the gateway is stopping: the job goes back to the queue
                await asyncio.shield(self._queue.release(job.id, self._owner, self._clock()))
                log.info("job_released", job_id=job.id)
            raise
        except Exception:
            log.exception("job_attempt_crashed", job_id=job.id)
            outcome = Outcome(
                "transient",
                {"code": "internal_error", "message": "the gateway failed while running the job"},
            )
        try:
            await self._end(job, outcome, progress)
        except SQLAlchemyError:
            # Not recorded: the lease lapses and the job is claimed again.
            log.exception("job_end_failed", job_id=job.id)

    async def _beat_until_done(
        self, job: Job, attempt: asyncio.Task[Outcome], progress: Progress
    ) -> Outcome:
        while True:
            done, _ = await asyncio.wait({attempt}, timeout=self._limits.heartbeat_s)
            if done:
                return attempt.result()
            try:
                beat = await self._queue.heartbeat(
                    job.id, self._owner, self._clock(), self._limits.lease_s, progress
                )
            except SQLAlchemyError:
                # The store is away for now: go on; if it stays away the lease lapses and
                # another gateway (or this one) runs the job again.
                log.exception("job_heartbeat_failed", job_id=job.id)
                continue
            if beat.cancel or not beat.held:
                attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await attempt
                raise _Stop(cancelled=beat.cancel)

    async def _stopped(self, job: Job, progress: Progress, *, cancelled: bool) -> None:
        if cancelled:
            await self._queue.finish(
                job.id,
                self._owner,
                JobStatus.CANCELLED,
                self._clock(),
                progress,
                error={"code": "cancelled", "message": "the job was cancelled"},
            )
            log.info("job_cancelled", job_id=job.id)
        else:
            log.warning("job_lease_lost", job_id=job.id)

    async def _end(self, job: Job, outcome: Outcome, progress: Progress) -> None:
        now = self._clock()
        if outcome.kind == "transient" and job.attempts < job.max_attempts:
            delay = self._policy.delay(job.attempts, outcome.retry_after)
            await self._queue.retry(
                job.id,
                self._owner,
                now + timedelta(seconds=delay),
                progress,
                outcome.error or {},
                version=outcome.version,
            )
            log.info("job_retry_scheduled", job_id=job.id, attempt=job.attempts, delay_s=delay)
            return
        status = JobStatus.SUCCEEDED if outcome.kind == "succeeded" else JobStatus.FAILED
        await self._queue.finish(
            job.id,
            self._owner,
            status,
            now,
            progress,
            error=outcome.error,
            version=outcome.version,
            dataset_id=outcome.dataset_id,
        )
        log.info("job_finished", job_id=job.id, status=status.value, attempts=job.attempts)


_CANCEL = "job_cancel_requested"
