"""Published connector versions, the scope audit, the version a run used, global keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(36)
TIME = sa.DateTime(timezone=True)
GLOBAL = sa.text("scope = 'global'")
SCOPES = "('personal', 'customer', 'global')"


def upgrade() -> None:
    """Create the version and scope-audit tables; add `runs.version` and the global-key index."""
    op.create_table(
        "connector_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("icons", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_versions")),
        sa.ForeignKeyConstraint(
            ["customer_id", "connector_id"],
            ["connectors.customer_id", "connectors.id"],
            name=op.f("fk_connector_versions_customer_id_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "connector_id", "number", name=op.f("uq_connector_versions_connector_id_number")
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_connector_versions_customer_id_id")),
    )
    op.create_table(
        "connector_version_scripts",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("param", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_version_scripts")),
        sa.ForeignKeyConstraint(
            ["customer_id", "version_id"],
            ["connector_versions.customer_id", "connector_versions.id"],
            name=op.f("fk_connector_version_scripts_customer_id_version_id_connector_versions"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "version_id",
            "kind",
            "param",
            name=op.f("uq_connector_version_scripts_version_id_kind_param"),
        ),
        sa.CheckConstraint(
            "kind IN ('auth', 'process', 'discovery')",
            name=op.f("ck_connector_version_scripts_kind"),
        ),
    )
    op.create_table(
        "scope_changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("connector_id", ID, nullable=False),
        sa.Column("changed_by", ID, nullable=False),
        sa.Column("from_scope", sa.String(20), nullable=False),
        sa.Column("to_scope", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scope_changes")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_scope_changes_customer_id_customers")
        ),
        sa.UniqueConstraint("customer_id", "id", name=op.f("uq_scope_changes_customer_id_id")),
        sa.CheckConstraint(f"from_scope IN {SCOPES}", name=op.f("ck_scope_changes_from_scope")),
        sa.CheckConstraint(f"to_scope IN {SCOPES}", name=op.f("ck_scope_changes_to_scope")),
    )
    op.create_index(op.f("ix_scope_changes_connector_id"), "scope_changes", ["connector_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
    op.create_index(
        "uq_connectors_global_key",
        "connectors",
        ["key"],
        unique=True,
        sqlite_where=GLOBAL,
        postgresql_where=GLOBAL,
    )


def downgrade() -> None:
    """Drop what `upgrade` made."""
    op.drop_index("uq_connectors_global_key", table_name="connectors")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("version")
    op.drop_index(op.f("ix_scope_changes_connector_id"), table_name="scope_changes")
    op.drop_table("scope_changes")
    op.drop_table("connector_version_scripts")
    op.drop_table("connector_versions")
