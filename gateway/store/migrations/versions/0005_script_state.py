"""Script state (`DOMO.getState/setState`, sealed) and one-time OAuth authorize links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the script-state and one-time-link tables."""
    op.create_table(
        "script_state",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("account_ref", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_state")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_script_state_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_script_state_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_script_state_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "customer_id",
            "connector_id",
            "account_ref",
            "name",
            name=op.f("uq_script_state_customer_id_connector_id_account_ref_name"),
        ),
    )
    op.create_table(
        "oauth_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("connector_key", sa.String(200), nullable=False),
        sa.Column("account_name", sa.String(200), nullable=True),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_links")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_oauth_links_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_oauth_links_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_oauth_links_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_oauth_links_secret_hash")),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_oauth_links_customer_id_id")),
    )
    op.create_index(op.f("ix_oauth_links_expires_at"), "oauth_links", ["expires_at"])


def downgrade() -> None:
    """Drop the one-time-link and script-state tables."""
    op.drop_index(op.f("ix_oauth_links_expires_at"), table_name="oauth_links")
    op.drop_table("oauth_links")
    op.drop_table("script_state")
