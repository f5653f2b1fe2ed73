"""One attempt of a job: the creator's rights, the connector's script, the dataset it fills."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.models import ConnectorKind, ScriptKind
from gateway.connectors.records import Connector
from gateway.connectors.runs import JobAttempt, RunService, StoredRun
from gateway.connectors.versions import VersionService
from gateway.datasets.tables import datasets
from gateway.errors import Conflict, GatewayError
from gateway.identity.principal import Principal
from gateway.identity.service import IdentityService
from gateway.oauth.refresh import RefreshUnavailable
from gateway.store.ids import new_id
from runtime.host import HttpResponse
from runtime.pool import PoolBusy
from writeback.datasets.errors import UploadRefused
from writeback.datasets.load import FileFormat
from writeback.datasets.service import DatasetService, Upload, WriteMode
from writeback.jobs.models import NAMED_DATASET, Job, Progress
from writeback.jobs.policy import TRANSIENT_STATUSES, is_transient, parse_retry_after
from writeback.jobs.sink import CountingSink, SpoolSink

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended: `succeeded`, `failed` (for good) or `transient` (try again)."""

    kind: str
    error: dict[str, Any] | None = None
    retry_after: float | None = None
    version: int | None = None
    dataset_id: str | None = None


class _Observer:
    """Counts upstream answers and keeps the last `Retry-After` of a 429/5xx."""

    def __init__(self, progress: Progress, clock: Callable[[], datetime]) -> None:
        self._progress = progress
        self._clock = clock
        self.retry_after: float | None = None

    def __call__(self, response: HttpResponse) -> None:
        self._progress.http_calls += 1
        if response.status not in TRANSIENT_STATUSES:
            return
        for name, value in response.headers:
            if name.lower() == "retry-after":
                self.retry_after = parse_retry_after(value, self._clock())


class JobExecutor:
    """Runs one attempt of a job with the rights its creator has now."""

    def __init__(
        self,
        engine: AsyncEngine,
        identity: IdentityService,
        versions: VersionService,
        runs: RunService,
        datasets_: DatasetService,
        spool_dir: Path,
        *,
        record_run: Callable[[Job, StoredRun], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._identity = identity
        self._versions = versions
        self._runs = runs
        self._datasets = datasets_
        self._spool_dir = spool_dir
        self._record_run = record_run
        self._clock = clock

    async def attempt(self, job: Job, progress: Progress) -> Outcome:
        """Run the job's script once; a refusal of the gateway is an outcome, not an error."""
        try:
            return await self._attempt(job, progress)
        except PoolBusy as busy:
            return Outcome("transient", _error("pool_busy", str(busy)), float(busy.retry_after))
        except GatewayError as refused:
            if isinstance(refused, RefreshUnavailable):  # the token endpoint may recover
                error = _error(refused.code, refused.detail)
                return Outcome("transient", error, refused.retry_after)
            return Outcome("failed", _error(refused.code, refused.detail))

    async def _attempt(self, job: Job, progress: Progress) -> Outcome:
        user = await self._identity.get_user(job.customer_id, job.user_id)
        principal = Principal(user.id, user.customer_id, user.role)
        runnable = await self._versions.runnable(
            principal, job.spec.connector_guid, ScriptKind.PROCESS
        )
        connector = runnable.connector
        if connector.kind is ConnectorKind.ACTION:
            raise Conflict("actions do not run as jobs; use the action endpoint")
        observer = _Observer(progress, self._clock)
        spool = None
        if job.spec.send_to_dataset is not None:
            spool = SpoolSink(self._spool_dir / f"{job.id}-{new_id()}.spool", progress)
        try:
            run = await self._runs.run_job(
                principal,
                runnable,
                JobAttempt(
                    job_id=job.id,
                    attempt=job.attempts,
                    account_id=job.spec.account_id,
                    report=job.spec.report,
                    parameters=dict(job.spec.parameters),
                    rows=spool if spool is not None else CountingSink(progress),
                    on_response=observer,
                ),
            )
            await self._record_run(job, run)
            result = run.result
            if result.status.value != "success":
                error = result.error.model_dump(mode="json") if result.error else None
                error = {**(error or {}), "run_id": run.id}
                if is_transient(result):
                    return Outcome("transient", error, observer.retry_after, runnable.version)
                return Outcome("failed", error, version=runnable.version)
            dataset_id = None
            if spool is not None:
                dataset_id = await self._publish(principal, connector, job, spool, progress)
            return Outcome("succeeded", version=runnable.version, dataset_id=dataset_id)
        finally:
            if spool is not None:
                spool.remove()

    async def _publish(
        self,
        principal: Principal,
        connector: Connector,
        job: Job,
        spool: SpoolSink,
        progress: Progress,
    ) -> str:
        """Write the spooled datagrid as the next version of the job's dataset.

        Raises:
            NotFound, Forbidden: the dataset id is not the caller's to write.
            UploadRefused: the datagrid cannot be a dataset (no columns).
        """
        if not spool.columns:
            raise UploadRefused("the job's datagrid has no columns: there is nothing to store")
        columns = spool.dataset_columns()
        target = job.spec.send_to_dataset
        name = connector.name if not job.spec.report else f"{connector.name} - {job.spec.report}"
        for _ in range(2):
            upload = Upload(FileFormat.CSV, spool.csv_body(), columns=columns)
            if target == NAMED_DATASET:
                found = await self._named(principal, name)
                if found is None:
                    with contextlib.suppress(Conflict):  # another job created it meanwhile
                        created = await self._datasets.create(principal, name, upload)
                        progress.rows_written = created.current.row_count
                        return created.id
                    continue
                target_id = found
            else:
                target_id = str(target)
            written = await self._datasets.write(principal, target_id, WriteMode.REPLACE, upload)
            progress.rows_written = written.current.row_count
            return written.id
        raise Conflict(f"the dataset {name!r} could not be created or found; try again")

    async def _named(self, principal: Principal, name: str) -> str | None:
        async with self._engine.connect() as connection:
            found: str | None = (
                await connection.execute(
                    select(datasets.c.id).where(
                        datasets.c.customer_id == principal.customer_id, datasets.c.name == name
                    )
                )
            ).scalar()
        return found


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}
