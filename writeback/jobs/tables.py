"""Jobs, their runs, and schedules: the durable queue in the metadata store (decision 0022).

The conventions of `gateway.store.tables` apply. A job is claimed by writing its lease
(`lease_owner`, `lease_expires_at`) with a conditional UPDATE; the holder renews it while the
job runs (heartbeat). `run_after` is when a queued job may be claimed (now, or after a
retry's backoff). A running job whose lease lapsed is claimable again by any process.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from gateway.store.tables import (
    ID_LENGTH,
    UTCDateTime,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

JOB_STATUSES: Final = ("queued", "running", "succeeded", "failed", "cancelled")
TRIGGERS: Final = ("api", "schedule", "dataset")
NAME_LENGTH: Final = 200

jobs: Final = Table(
    "jobs",
    metadata,
    id_column(),
    customer_id_column(),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("connector_guid", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("report", String(NAME_LENGTH), nullable=True),
    Column("parameters", JSON, nullable=False),
    # Pull connectors: a dataset id, "" for the dataset named after connector and report,
    # NULL for a job whose datagrid goes nowhere (writeback).
    Column("send_to_dataset", String(ID_LENGTH), nullable=True),
    Column("trigger", String(10), nullable=False),
    Column("schedule_id", String(ID_LENGTH), nullable=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UTCDateTime(), nullable=False),
    Column("lease_owner", String(ID_LENGTH), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    # {"rows_read", "rows_written", "http_calls"}: updated while the job runs.
    Column("progress", JSON, nullable=False),
    Column("version", Integer, nullable=True),
    Column("dataset_id", String(ID_LENGTH), nullable=True),
    Column("error", JSON, nullable=True),
    created_at_column(),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    CheckConstraint(
        "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", "status"
    ),
    CheckConstraint("trigger IN ('api', 'schedule', 'dataset')", "trigger"),
    # What the claim looks for: due queued jobs, and running ones whose lease lapsed.
    Index(None, "status", "run_after"),
    Index(None, "customer_id", "status"),
)

# The runs of a job, one per attempt (the run itself is in `runs`).
job_runs: Final = Table(
    "job_runs",
    metadata,
    id_column(),
    customer_id_column(),
    Column("job_id", String(ID_LENGTH), nullable=False),
    Column("run_id", String(ID_LENGTH), nullable=False),
    Column("attempt", Integer, nullable=False),
    created_at_column(),
    ForeignKeyConstraint(
        ["customer_id", "job_id"], ["jobs.customer_id", "jobs.id"], ondelete="CASCADE"
    ),
    Index(None, "job_id"),
)

# A cron schedule (`cron`, `timezone`, `next_run_at`) or a dataset trigger (`dataset_id`,
# `seen_version`): each enqueues a job of the connector with the same inputs.
schedules: Final = Table(
    "schedules",
    metadata,
    id_column(),
    customer_id_column(),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("connector_guid", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("report", String(NAME_LENGTH), nullable=True),
    Column("parameters", JSON, nullable=False),
    Column("send_to_dataset", String(ID_LENGTH), nullable=True),
    Column("cron", String(NAME_LENGTH), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("next_run_at", UTCDateTime(), nullable=True),
    Column("dataset_id", String(ID_LENGTH), nullable=True),
    Column("seen_version", Integer, nullable=True),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    CheckConstraint("(cron IS NULL) <> (dataset_id IS NULL)", "cron_or_dataset"),
    Index(None, "next_run_at"),
    Index(None, "dataset_id"),
)
