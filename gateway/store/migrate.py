"""Schema migrations: Alembic, configured in code, run on the async engine at every start.

There is no `alembic.ini`: `alembic_config()` points Alembic at the `migrations` folder of
this package, so migrating works the same from a checkout and from an installed wheel.
Developers write a new revision with
`alembic.command.revision(alembic_config(), message=..., rev_id="000N")` and review it by hand;
`tests/store/test_migrations.py` fails until the migrated schema equals `tables.metadata`.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Final
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.engine import create_engine

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"

# Every gateway process that migrates a PostgreSQL database takes this transaction-level
# advisory lock first, so of two replicas starting together one migrates and the other then
# finds the schema at head. A fixed key derived from a name, so it is stable across releases.
_ADVISORY_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"gateway.store.migrate").digest()[:8], "big", signed=True
)

# Alembic keeps its `context` and `op` proxies in module globals. `run_sync` lets other tasks
# run whenever the migration awaits the database, so two upgrades in one event loop would
# overwrite each other's proxies: they take turns (one lock per loop, as locks are loop-bound).
_LOOP_LOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()


class MigrationError(Exception):
    """The database could not be brought to the current schema."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for this package's migrations, optionally bound to a connection.

    `migrations/env.py` runs on the bound connection; it refuses to run without one.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the code expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise MigrationError("no migrations found in " + str(MIGRATIONS_DIR))
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(engine_or_url: AsyncEngine | str) -> None:
    """Bring the database to the head revision; a no-op when it is there already.

    Safe at every start and when several processes start at once: on PostgreSQL the upgrade
    runs in one transaction under an advisory lock, on SQLite under the write lock that
    `BEGIN IMMEDIATE` takes (see `gateway.store.engine`). A failed upgrade changes nothing.

    Raises:
        MigrationError: the migrations left rows violating a foreign key (SQLite).
    """
    if isinstance(engine_or_url, AsyncEngine):
        await _upgrade(engine_or_url)
        return
    engine = create_engine(engine_or_url)
    try:
        await _upgrade(engine)
    finally:
        await engine.dispose()


async def _upgrade(engine: AsyncEngine) -> None:
    async with _loop_lock(), engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            await _upgrade_sqlite(connection)
        else:
            async with connection.begin():
                await connection.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
                await connection.run_sync(_run_alembic_upgrade)


async def _upgrade_sqlite(connection: AsyncConnection) -> None:
    # Dialect branch, unavoidable: SQLite changes a table by copying it (Alembic batch mode),
    # and dropping the old copy with foreign keys on would delete or orphan referencing rows.
    # The pragma only works outside a transaction; violations are checked before committing.
    await connection.run_sync(_set_sqlite_foreign_keys, False)
    try:
        async with connection.begin():
            await connection.run_sync(_run_alembic_upgrade)
            violations = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if violations:
                raise MigrationError(f"migration broke foreign keys: {violations[:5]}")
    finally:
        await connection.run_sync(_set_sqlite_foreign_keys, True)


def _run_alembic_upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    # Through the driver's cursor: a SQLAlchemy execute would first begin a transaction.
    driver_connection = connection.connection.dbapi_connection
    assert driver_connection is not None  # checked out, so never None
    cursor = driver_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()


def _loop_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOOP_LOCKS.get(loop)
    if lock is None:
        lock = _LOOP_LOCKS[loop] = asyncio.Lock()
    return lock
