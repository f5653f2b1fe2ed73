"""App sessions on instance origins, and the one-time launch links and codes leading to them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def _owned(table: str) -> list[sa.ForeignKeyConstraint]:
    """The customer, instance, user and token references every row of `table` has."""
    return [
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f(f"fk_{table}_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "instance_id"],
            ["app_instances.customer_id", "app_instances.id"],
            name=op.f(f"fk_{table}_customer_id_instance_id_app_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f(f"fk_{table}_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "token_id"],
            ["api_tokens.customer_id", "api_tokens.id"],
            name=op.f(f"fk_{table}_customer_id_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    """Create the session and code tables."""
    op.create_table(
        "app_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_id", ID, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_sessions")),
        *_owned("app_sessions"),
        sa.UniqueConstraint("session_hash", name=op.f("uq_app_sessions_session_hash")),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_app_sessions_customer_id_id")),
    )
    op.create_index(
        op.f("ix_app_sessions_instance_id_user_id"), "app_sessions", ["instance_id", "user_id"]
    )
    op.create_index(op.f("ix_app_sessions_expires_at"), "app_sessions", ["expires_at"])
    op.create_table(
        "app_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_id", ID, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_codes")),
        *_owned("app_codes"),
        sa.CheckConstraint("purpose IN ('launch', 'exchange')", name=op.f("ck_app_codes_purpose")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_app_codes_code_hash")),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_app_codes_customer_id_id")),
    )
    op.create_index(op.f("ix_app_codes_expires_at"), "app_codes", ["expires_at"])


def downgrade() -> None:
    """Drop the session and code tables."""
    op.drop_index(op.f("ix_app_codes_expires_at"), table_name="app_codes")
    op.drop_table("app_codes")
    op.drop_index(op.f("ix_app_sessions_expires_at"), table_name="app_sessions")
    op.drop_index(op.f("ix_app_sessions_instance_id_user_id"), table_name="app_sessions")
    op.drop_table("app_sessions")
