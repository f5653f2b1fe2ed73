"""The metadata store: SQLAlchemy Core on SQLite or PostgreSQL, one code path for both."""

from __future__ import annotations

from gateway.store.engine import async_url, create_engine, database_url_for
from gateway.store.ids import new_id
from gateway.store.migrate import MigrationError, current_revision, head_revision, upgrade
from gateway.store.paging import paginate
from gateway.store.tables import metadata, utcnow

__all__ = [
    "MigrationError",
    "async_url",
    "create_engine",
    "current_revision",
    "database_url_for",
    "head_revision",
    "metadata",
    "new_id",
    "paginate",
    "upgrade",
    "utcnow",
]
