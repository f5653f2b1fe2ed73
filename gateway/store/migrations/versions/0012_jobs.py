"""Jobs: the durable queue, the runs of each job, and schedules (decision 0022).

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def _owner(table: str) -> list[sa.Constraint]:
    return [
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f(f"fk_{table}_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f(f"fk_{table}_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f(f"uq_{table}_customer_id_id")),
    ]


def upgrade() -> None:
    """Create `jobs`, `job_runs` and `schedules`."""
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("connector_guid", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("report", sa.String(200), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("send_to_dataset", ID, nullable=True),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("schedule_id", ID, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", TIME, nullable=False),
        sa.Column("lease_owner", ID, nullable=True),
        sa.Column("lease_expires_at", TIME, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("dataset_id", ID, nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        *_owner("jobs"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_jobs_status"),
        ),
        sa.CheckConstraint(
            "trigger IN ('api', 'schedule', 'dataset')", name=op.f("ck_jobs_trigger")
        ),
    )
    op.create_index(op.f("ix_jobs_status_run_after"), "jobs", ["status", "run_after"])
    op.create_index(op.f("ix_jobs_customer_id_status"), "jobs", ["customer_id", "status"])
    op.create_table(
        "job_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_job_runs_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "job_id"],
            ["jobs.customer_id", "jobs.id"],
            name=op.f("fk_job_runs_customer_id_job_id_jobs"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_job_runs_job_id"), "job_runs", ["job_id"])
    op.create_table(
        "schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("connector_guid", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("report", sa.String(200), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("send_to_dataset", ID, nullable=True),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("next_run_at", TIME, nullable=True),
        sa.Column("dataset_id", ID, nullable=True),
        sa.Column("seen_version", sa.Integer(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        *_owner("schedules"),
        sa.CheckConstraint(
            "(cron IS NULL) <> (dataset_id IS NULL)", name=op.f("ck_schedules_cron_or_dataset")
        ),
    )
    op.create_index(op.f("ix_schedules_next_run_at"), "schedules", ["next_run_at"])
    op.create_index(op.f("ix_schedules_dataset_id"), "schedules", ["dataset_id"])


def downgrade() -> None:
    """Drop the job tables."""
    op.drop_table("schedules")
    op.drop_table("job_runs")
    op.drop_table("jobs")
