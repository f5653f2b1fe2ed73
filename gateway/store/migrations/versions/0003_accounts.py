"""Accounts: encrypted credentials per user and data provider, and their shares.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)


def upgrade() -> None:
    """Create the account tables."""
    op.create_table(
        "accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("connector_key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("auth_method", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("secret_fields", sa.JSON(), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("refresh_lease_owner", ID, nullable=True),
        sa.Column("refresh_lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_backoff_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_accounts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "owner_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_accounts_customer_id_owner_id_users"),
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_accounts_customer_id_id")),
        sa.CheckConstraint(
            "status IN ('valid', 'needs_reauth', 'invalid')", name=op.f("ck_accounts_status")
        ),
        sa.CheckConstraint(
            "auth_method IN ('none', 'basic', 'apikey', 'oauth2')",
            name=op.f("ck_accounts_auth_method"),
        ),
    )
    op.create_table(
        "account_secrets",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "field", name=op.f("pk_account_secrets")),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_account_secrets_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "account_shares",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "user_id", name=op.f("pk_account_shares")),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_account_shares_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_account_shares_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop the account tables."""
    op.drop_table("account_shares")
    op.drop_table("account_secrets")
    op.drop_table("accounts")
