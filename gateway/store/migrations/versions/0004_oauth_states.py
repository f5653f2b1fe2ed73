"""OAuth 2.0: pending authorisations (state, sealed PKCE verifier), each used once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the pending-authorisation table."""
    op.create_table(
        "oauth_states",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("account_name", sa.String(200), nullable=True),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("verifier_key_id", sa.String(32), nullable=False),
        sa.Column("verifier_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_oauth_states_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_oauth_states_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "connector_id"],
            ["connectors.customer_id", "connectors.id"],
            name=op.f("fk_oauth_states_customer_id_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_oauth_states_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_oauth_states_customer_id_id")),
    )
    op.create_index(op.f("ix_oauth_states_expires_at"), "oauth_states", ["expires_at"])


def downgrade() -> None:
    """Drop the pending-authorisation table."""
    op.drop_index(op.f("ix_oauth_states_expires_at"), table_name="oauth_states")
    op.drop_table("oauth_states")
