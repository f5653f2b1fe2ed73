"""Connectors: definitions, their scripts and icons, and runs.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def _connector_child_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id", "connector_id"],
        ["connectors.customer_id", "connectors.id"],
        name=op.f(f"fk_{table}_customer_id_connector_id_connectors"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the connector and run tables."""
    op.create_table(
        "connectors",
        sa.Column("id", ID, nullable=False),
        sa.Column("guid", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("auth", sa.JSON(), nullable=False),
        sa.Column("client_secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("client_secret_key_id", sa.String(64), nullable=True),
        sa.Column("allowed_hosts", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("reports", sa.JSON(), nullable=False),
        sa.Column("account_fields", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_connectors_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "owner_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_connectors_customer_id_owner_id_users"),
        ),
        sa.UniqueConstraint("guid", name=op.f("uq_connectors_guid")),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_connectors_customer_id_id")),
        sa.UniqueConstraint("customer_id", "key", name=op.f("uq_connectors_customer_id_key")),
        sa.CheckConstraint(
            "kind IN ('action', 'writeback', 'connector')", name=op.f("ck_connectors_kind")
        ),
        sa.CheckConstraint(
            "scope IN ('personal', 'customer', 'global')", name=op.f("ck_connectors_scope")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'rejected', 'withdrawn')",
            name=op.f("ck_connectors_status"),
        ),
    )
    op.create_table(
        "connector_scripts",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("param", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_scripts")),
        _connector_child_key("connector_scripts"),
        sa.UniqueConstraint(
            "connector_id",
            "kind",
            "param",
            name=op.f("uq_connector_scripts_connector_id_kind_param"),
        ),
        sa.CheckConstraint(
            "kind IN ('auth', 'process', 'discovery')", name=op.f("ck_connector_scripts_kind")
        ),
    )
    op.create_table(
        "connector_icons",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("slot", sa.String(20), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_icons")),
        _connector_child_key("connector_icons"),
        sa.UniqueConstraint(
            "connector_id", "slot", name=op.f("uq_connector_icons_connector_id_slot")
        ),
        sa.CheckConstraint(
            "slot IN ('icon', 'icon_plain', 'logo', 'banner')",
            name=op.f("ck_connector_icons_slot"),
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("connector_guid", ID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("account_resolution", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_runs_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_runs_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_runs_customer_id_id")),
        sa.CheckConstraint(
            "kind IN ('dev', 'action', 'auth', 'job', 'check')", name=op.f("ck_runs_kind")
        ),
        sa.CheckConstraint("mode IN ('process', 'auth', 'discovery')", name=op.f("ck_runs_mode")),
        sa.CheckConstraint(
            "status IN ('success', 'failed', 'error', 'timeout')", name=op.f("ck_runs_status")
        ),
    )
    op.create_index(op.f("ix_runs_created_at"), "runs", ["created_at"])
    op.create_index(
        op.f("ix_runs_customer_id_connector_guid"), "runs", ["customer_id", "connector_guid"]
    )
    op.create_index(op.f("ix_runs_customer_id_user_id"), "runs", ["customer_id", "user_id"])


def downgrade() -> None:
    """Drop the connector and run tables."""
    op.drop_index(op.f("ix_runs_customer_id_user_id"), table_name="runs")
    op.drop_index(op.f("ix_runs_customer_id_connector_guid"), table_name="runs")
    op.drop_index(op.f("ix_runs_created_at"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("connector_icons")
    op.drop_table("connector_scripts")
    op.drop_table("connectors")
