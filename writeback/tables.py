"""The tables of `sql.*`: a connector's own tables and their rows (decision 0023).

The conventions of `gateway.store.tables` apply. A connector's `sql` store belongs to the
customer whose runs wrote it (runs of another customer's copy of a global connector keep
their own), like `DOMO.getState`; rows are JSON objects kept in insertion order (ids are
UUIDv7), with their size counted against the connector's cap.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import JSON, Column, ForeignKeyConstraint, Integer, String, Table, UniqueConstraint

from gateway.store.tables import (
    ID_LENGTH,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

SQL_TABLE_NAME_LENGTH: Final = 64

connector_sql_tables: Final = Table(
    "connector_sql_tables",
    metadata,
    id_column(),
    customer_id_column(),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    Column("name", String(SQL_TABLE_NAME_LENGTH), nullable=False),
    # [{"name", "type"}]: the columns `sql.createTable` declared, in order.
    Column("columns", JSON, nullable=False),
    created_at_column(),
    UniqueConstraint("customer_id", "connector_id", "name"),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE"),
)

connector_sql_rows: Final = Table(
    "connector_sql_rows",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("table_id", String(ID_LENGTH), nullable=False),
    # The row as a JSON object of the table's columns.
    Column("data", JSON, nullable=False),
    # Bytes of the row's JSON: what counts against the connector's cap.
    Column("size", Integer, nullable=False),
    ForeignKeyConstraint(
        ["customer_id", "table_id"],
        ["connector_sql_tables.customer_id", "connector_sql_tables.id"],
        ondelete="CASCADE",
    ),
)
