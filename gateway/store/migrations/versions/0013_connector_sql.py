"""`sql.*`: a connector's own tables and their rows (decision 0023).

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables of `sql.*`."""
    op.create_table(
        "connector_sql_tables",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_sql_tables")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_connector_sql_tables_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_sql_tables_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "customer_id",
            "connector_id",
            "name",
            name=op.f("uq_connector_sql_tables_customer_id_connector_id_name"),
        ),
        sa.UniqueConstraint(
            "customer_id", "id", name=op.f("uq_connector_sql_tables_customer_id_id")
        ),
    )
    op.create_table(
        "connector_sql_rows",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("table_id", ID, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_sql_rows")),
        sa.ForeignKeyConstraint(
            ["customer_id", "table_id"],
            ["connector_sql_tables.customer_id", "connector_sql_tables.id"],
            name=op.f("fk_connector_sql_rows_customer_id_table_id_connector_sql_tables"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop the tables of `sql.*`."""
    op.drop_table("connector_sql_rows")
    op.drop_table("connector_sql_tables")
