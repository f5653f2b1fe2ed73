"""What a job is: its inputs, status, attempts and progress (SPEC 4.2, 7; decision 0022)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from gateway.store.tables import utcnow
from runtime.model import JsonValue

NAMED_DATASET: Final = ""
"""`send_to_dataset` stored for `true`: the dataset named `<connector name> - <report>`."""


class JobStatus(StrEnum):
    """Where a job is: `queued` -> `running` -> `succeeded` | `failed` | `cancelled`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """Whether the job is over (nothing more happens to it)."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Trigger(StrEnum):
    """What made the job."""

    API = "api"
    SCHEDULE = "schedule"
    DATASET = "dataset"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job runs: the connector's process script with an account, report, parameters.

    `send_to_dataset` (pull connectors): None (rows go nowhere), `NAMED_DATASET`, or the id
    of the dataset whose next version the datagrid becomes.
    """

    connector_guid: str
    account_id: str | None = None
    report: str | None = None
    parameters: dict[str, JsonValue] = field(default_factory=dict)
    send_to_dataset: str | None = None


@dataclass
class Progress:
    """Counters of the running attempt, written with each heartbeat.

    `rows_read`: datagrid rows the script produced; `rows_written`: rows written to the
    target dataset; `http_calls`: upstream answers the script received.
    """

    rows_read: int = 0
    rows_written: int = 0
    http_calls: int = 0

    def document(self) -> dict[str, int]:
        """The progress as the store and the API show it."""
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "http_calls": self.http_calls,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Progress:
        """Progress read back from the store."""
        return cls(
            int(document.get("rows_read", 0)),
            int(document.get("rows_written", 0)),
            int(document.get("http_calls", 0)),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored."""

    id: str
    customer_id: str
    user_id: str
    spec: JobSpec
    trigger: Trigger
    schedule_id: str | None
    status: JobStatus
    attempts: int
    max_attempts: int
    run_after: datetime
    cancel_requested: bool
    progress: Progress
    version: int | None
    """The published version the last attempt ran; None for the owner's draft (or none yet)."""
    dataset_id: str | None
    """The dataset the job wrote (pull connectors with `send_to_dataset`)."""
    error: dict[str, JsonValue] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


def job_from_row(row: Any) -> Job:
    """A job from its row in `jobs`."""
    return Job(
        id=row.id,
        customer_id=row.customer_id,
        user_id=row.user_id,
        spec=JobSpec(
            row.connector_guid, row.account_id, row.report, row.parameters, row.send_to_dataset
        ),
        trigger=Trigger(row.trigger),
        schedule_id=row.schedule_id,
        status=JobStatus(row.status),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        run_after=row.run_after,
        cancel_requested=row.cancel_requested,
        progress=Progress.from_document(row.progress),
        version=row.version,
        dataset_id=row.dataset_id,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


class Clock:
    """The time of jobs and schedules: claims, leases, backoff, due schedules.

    Tests replace it to move time on without waiting.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return utcnow()
