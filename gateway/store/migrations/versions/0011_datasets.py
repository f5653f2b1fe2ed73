"""Datasets: names and owners, and their immutable versions (part files in the data folder).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the dataset tables."""
    op.create_table(
        "datasets",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_datasets_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "owner_id"],
            ["users.customer_id", "users.id"],
            name=op.f("fk_datasets_customer_id_owner_id_users"),
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_datasets_customer_id_id")),
        sa.UniqueConstraint("customer_id", "name", name=op.f("uq_datasets_customer_id_name")),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("retired_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.ForeignKeyConstraint(
            ["customer_id", "dataset_id"],
            ["datasets.customer_id", "datasets.id"],
            name=op.f("fk_dataset_versions_customer_id_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "dataset_id", "number", name=op.f("uq_dataset_versions_dataset_id_number")
        ),
        sa.CheckConstraint("mode IN ('replace', 'append')", name=op.f("ck_dataset_versions_mode")),
    )


def downgrade() -> None:
    """Drop the dataset tables."""
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
