"""Jobs for their callers: create (checked as a run would be), read, cancel (SPEC 4.2, 4.3).

Who may see and cancel a job: its creator and its customer's admins; another customer's
job is 404 (THREATS I2). A job runs the connector as `VersionService.runnable` says: the
owner's draft for the owner of a personal connector, else the latest published version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.accounts.service import AccountService
from gateway.connectors.errors import Invalid, InvalidParameters, field_error
from gateway.connectors.models import ConnectorKind, ScriptKind, parameter_errors
from gateway.connectors.records import Connector
from gateway.connectors.versions import VersionService
from gateway.errors import Forbidden, ProviderMismatch
from gateway.identity.principal import Principal
from writeback.datasets.service import DatasetService
from writeback.jobs.models import NAMED_DATASET, Job, JobSpec
from writeback.jobs.queue import JobQueue


class JobService:
    """Checks and queues jobs, and answers the job endpoints."""

    def __init__(
        self,
        queue: JobQueue,
        versions: VersionService,
        accounts: AccountService,
        datasets: DatasetService,
        *,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None] = lambda: None,
        on_cancel: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.queue = queue
        self._versions = versions
        self._accounts = accounts
        self._datasets = datasets
        self._clock = clock
        self._on_queued = on_queued
        self._on_cancel = on_cancel

    async def check(self, principal: Principal, spec: JobSpec) -> Connector:
        """Refuse a job that cannot run for this caller, before it is queued.

        Raises:
            NotFound: no such connector, account or dataset for this caller.
            Conflict: the connector has no published version the caller may run.
            Invalid: an action, an undeclared report, or `send_to_dataset` on a writeback.
            InvalidParameters: declared parameters with values that do not fit.
            AccountNotAccessible, ProviderMismatch: the account may not be used here.
            Forbidden: the target dataset is neither the caller's nor is it an admin.
        """
        runnable = await self._versions.runnable(principal, spec.connector_guid, ScriptKind.PROCESS)
        connector = runnable.connector
        if connector.kind is ConnectorKind.ACTION:
            raise invalid(
                ["connector_guid"], "an action runs through its process endpoint, not as a job"
            )
        if spec.report is not None and spec.report not in connector.reports:
            raise invalid(["report"], f"the connector declares no report named {spec.report!r}")
        declared = {p.name for p in connector.parameters}
        values = {k: v for k, v in spec.parameters.items() if k in declared}
        errors = parameter_errors(connector.parameters, values, complete=True)
        if errors:
            raise InvalidParameters("the parameters do not fit the connector's parameters", errors)
        if spec.account_id is not None:
            account = await self._accounts.usable(principal, spec.account_id)
            if account.connector_key != connector.key:
                raise ProviderMismatch(
                    f"the account is for {account.connector_key!r}, "
                    f"the connector needs {connector.key!r}"
                )
        if spec.send_to_dataset is not None:
            if connector.kind is not ConnectorKind.CONNECTOR:
                raise invalid(["send_to_dataset"], "only pull connectors send rows to a dataset")
            if spec.send_to_dataset != NAMED_DATASET:
                dataset = await self._datasets.get(
                    principal, spec.send_to_dataset, with_versions=False
                )
                if dataset.owner_id != principal.user_id and not principal.is_admin_of(
                    dataset.customer_id
                ):
                    raise Forbidden("only the dataset's owner and its customer's admins write it")
        return connector

    async def create(self, principal: Principal, spec: JobSpec) -> Job:
        """Check and queue a job; the caller's gateway looks for work at once.

        Raises:
            As `check`.
        """
        await self.check(principal, spec)
        job_id = await self.queue.enqueue(principal, spec, self._clock())
        self._on_queued()
        return await self.queue.get(principal, job_id)

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        """Cancel a queued job, or stop a running one (its worker is killed).

        Raises:
            NotFound: no such job for this caller.
            Conflict: the job has already ended.
        """
        job = await self.queue.request_cancel(principal, job_id, self._clock())
        self._on_cancel(job.id)
        return job


def invalid(loc: list[str], message: str) -> Invalid:
    return Invalid(message, [field_error(loc, message, "invalid")])
