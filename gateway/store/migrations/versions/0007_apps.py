"""Apps: designs with their manifest and files, account aliases, instances, per-user mappings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def _app_child(table: str) -> sa.ForeignKeyConstraint:
    """The child's `(customer_id, app_id)` reference, deleted with its app."""
    return sa.ForeignKeyConstraint(
        ["customer_id", "app_id"],
        ["apps.customer_id", "apps.id"],
        name=op.f(f"fk_{table}_customer_id_app_id_apps"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the app tables."""
    op.create_table(
        "apps",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_apps_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "owner_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_apps_customer_id_owner_id_users"),
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_apps_customer_id_id")),
    )
    op.create_table(
        "app_files",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "path", name=op.f("pk_app_files")),
        _app_child("app_files"),
    )
    op.create_table(
        "app_aliases",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("provider_key", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "alias", name=op.f("pk_app_aliases")),
        _app_child("app_aliases"),
    )
    op.create_table(
        "app_instances",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_instances")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_app_instances_customer_id_customers")
        ),
        _app_child("app_instances"),
        sa.ForeignKeyConstraint(
            ["customer_id", "created_by"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_app_instances_customer_id_created_by_users"),
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_app_instances_customer_id_id")),
    )
    op.create_table(
        "app_account_mappings",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint(
            "instance_id", "user_id", "alias", name=op.f("pk_app_account_mappings")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "instance_id"],
            ["app_instances.customer_id", "app_instances.id"],
            name=op.f("fk_app_account_mappings_customer_id_instance_id_app_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id", "alias"],
            ["app_aliases.app_id", "app_aliases.alias"],
            name=op.f("fk_app_account_mappings_app_id_alias_app_aliases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "user_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_app_account_mappings_customer_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "account_id"],
            ["accounts.customer_id", "accounts.id"],
            name=op.f("fk_app_account_mappings_customer_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop the app tables."""
    op.drop_table("app_account_mappings")
    op.drop_table("app_instances")
    op.drop_table("app_aliases")
    op.drop_table("app_files")
    op.drop_table("apps")
