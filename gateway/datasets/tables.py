"""The dataset tables: a dataset's name and owner, and its immutable versions.

The conventions of `gateway.store.tables` apply. The rows themselves are DuckDB files in the
data folder (`writeback.datasets.storage`, decision 0021): a version lists the part files it
reads, so an append adds one part without copying the others, and a version row outlives
its replacement by a grace period so that readers on other replicas can finish.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from gateway.store.tables import (
    ID_LENGTH,
    UTCDateTime,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

DATASET_NAME_LENGTH: Final = 200

datasets: Final = Table(
    "datasets",
    metadata,
    id_column(),
    customer_id_column(),
    Column("owner_id", String(ID_LENGTH), nullable=False),
    # Unique per customer: jobs find "<connector name> - <report>" by name (SPEC 4.3).
    Column("name", String(DATASET_NAME_LENGTH), nullable=False),
    # The number of the version readers get; bumped by compare-and-swap on every publish.
    Column("current_version", Integer, nullable=False),
    created_at_column(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("customer_id", "id"),
    UniqueConstraint("customer_id", "name"),
    ForeignKeyConstraint(["customer_id", "owner_id"], ["users.customer_id", "users.id"]),
)

dataset_versions: Final = Table(
    "dataset_versions",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("dataset_id", String(ID_LENGTH), nullable=False),
    Column("number", Integer, nullable=False),
    # [{"name", "type", "storage"}]: the API type and the exact DuckDB type of every part.
    Column("columns", JSON, nullable=False),
    # [{"file", "rows", "bytes"}]: the immutable part files, in row order.
    Column("parts", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("created_by", String(ID_LENGTH), nullable=False),
    created_at_column(),
    # Set when a newer version is published; the files go after the grace period.
    Column("retired_at", UTCDateTime(), nullable=True),
    UniqueConstraint("dataset_id", "number"),
    CheckConstraint("mode IN ('replace', 'append')", name="mode"),
    ForeignKeyConstraint(
        ["customer_id", "dataset_id"],
        ["datasets.customer_id", "datasets.id"],
        ondelete="CASCADE",
    ),
)
