"""The caches' invalidation counters, one row per cache area (decision 0019).

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create `cache_generations` (rows appear with the first write of each area)."""
    op.create_table(
        "cache_generations",
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("area", name=op.f("pk_cache_generations")),
    )


def downgrade() -> None:
    """Drop `cache_generations`."""
    op.drop_table("cache_generations")
