"""Alembic's environment: runs the migrations on the connection `gateway.store.migrate` binds."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through gateway.store.migrate, which binds a connection")
if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters tables by copying them; autogenerate must write batch operations.
    render_as_batch=True,
)
# `migrate.upgrade` has already begun the transaction, so this adds none: the whole upgrade
# commits or rolls back as one, on SQLite too (its DDL is transactional under BEGIN IMMEDIATE).
with context.begin_transaction():
    context.run_migrations()
