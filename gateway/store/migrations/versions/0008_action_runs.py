"""Action runs: the scope and timings of a run, and answers stored by Idempotency-Key.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add `runs.scope` and `runs.timings`; create `idempotency_keys`."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("scope", sa.String(20), nullable=True))
        batch.add_column(sa.Column("timings", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            "scope", "scope IS NULL OR scope IN ('personal', 'customer', 'global')"
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("action_guid", ID, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("claim_lease_owner", ID, nullable=True),
        sa.Column("claim_lease_expires_at", TIME, nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(200), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_idempotency_keys_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_idempotency_keys_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_idempotency_keys_customer_id_id")),
        sa.UniqueConstraint(
            "customer_id",
            "user_id",
            "action_guid",
            "key",
            name=op.f("uq_idempotency_keys_customer_id_user_id_action_guid_key"),
        ),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    """Drop what `upgrade` made."""
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("scope", type_="check")
        batch.drop_column("timings")
        batch.drop_column("scope")
