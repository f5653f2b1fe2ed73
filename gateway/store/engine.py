"""The async engine: one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite (the embedded default) gets, on every new connection: `busy_timeout` (so a second
process waits instead of failing), `foreign_keys=ON`, and WAL (readers never block the
writer; switched on once, the mode is kept in the file).
Transactions open with `BEGIN IMMEDIATE`, emitted by SQLAlchemy instead of the sqlite3
driver, whose legacy mode would start transactions late or not at all (no transactional DDL,
no repeatable reads): a transaction holds the write lock from its first statement, so a
read-then-write can never fail half-way with `SQLITE_BUSY` when another process wrote in
between. Inside one process the pool has exactly one connection, so writers queue fairly in
the pool rather than on the file lock; the rule that follows is that a task must never hold
two connections at once (it would wait for itself until `pool_timeout`).

PostgreSQL uses SQLAlchemy's pool over asyncpg connections, with a liveness check on
checkout. A `search_path` query parameter in the URL (`...?search_path=gateway`) puts the
gateway's tables in that schema; libpq's `sslmode` is accepted as asyncpg's `ssl`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Final, Protocol, cast

from sqlalchemy import Connection, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, QueuePool

SQLITE_BUSY_TIMEOUT_MS: Final = 5_000
DATABASE_FILE: Final = "gateway.db"
_WAL_SWITCH_ATTEMPTS: Final = 100
_WAL_SWITCH_PAUSE_S: Final = 0.005
_CLOSE_POLL_S: Final = 0.01

_SQLITE_DRIVERS: Final = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}
_POSTGRESQL_DRIVERS: Final = {
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}


class _SQLiteDriverConnection(Protocol):
    """The part of the (aiosqlite-adapted) sqlite3 connection the connect hook uses."""

    isolation_level: str | None

    def cursor(self) -> _SQLiteCursor: ...


class _SQLiteCursor(Protocol):
    def execute(self, sql: str) -> object: ...

    def fetchone(self) -> tuple[object, ...]: ...

    def close(self) -> None: ...


def database_url_for(settings_database_url: str | None, data_dir: Path) -> str:
    """The database URL to use: the configured one, else SQLite in the data folder.

    The data folder itself is created by the caller (`gateway serve`) before the first
    connection; SQLite creates the file, not its directory.
    """
    if settings_database_url:
        return settings_database_url
    return f"sqlite:///{data_dir.resolve() / DATABASE_FILE}"


def async_url(url: str) -> URL:
    """`url` rewritten for the async drivers (aiosqlite, asyncpg).

    Raises:
        ValueError: `url` is not a SQLite or PostgreSQL URL.
    """
    parsed = make_url(url)
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in _POSTGRESQL_DRIVERS:
        query = dict(parsed.query)
        if "sslmode" in query:  # libpq's spelling; asyncpg takes the same values as `ssl`
            query["ssl"] = query.pop("sslmode")
        return parsed.set(drivername="postgresql+asyncpg", query=query)
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
    )


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL `url` (see the module docstring).

    No connection is made until the engine is first used.

    Raises:
        ValueError: `url` is not a SQLite or PostgreSQL URL.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target)
    return _postgresql_engine(target)


async def close_engine(engine: AsyncEngine, grace_s: float = 10.0) -> bool:
    """Dispose `engine` once every connection is back in its pool (at most `grace_s` later).

    A task cancelled while it used a connection (a shutdown cancels what still runs) gives
    the connection back in a shielded task of SQLAlchemy's that finishes after the
    cancellation returns. Disposing before it did, and closing the loop, fails that
    connection's rollback (`CancelledError`, logged as an error by the pool) and strands
    aiosqlite's thread, which then finds the loop closed.

    Returns:
        Whether every connection came back within `grace_s`.
    """
    pool = engine.pool
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    # Polled: the pool has nothing to await, and its checkin event fires before the count drops.
    while isinstance(pool, QueuePool) and pool.checkedout() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_CLOSE_POLL_S)
    returned = not isinstance(pool, QueuePool) or pool.checkedout() == 0
    await engine.dispose()
    return returned


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The SQLite file `engine` uses; None for PostgreSQL, a memory database (another
    connection would see another database) or a URL with options."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or url.query:
        return None
    return url.database


def connect_sqlite_file(path: str) -> sqlite3.Connection:
    """A plain sqlite3 connection to `path`, set up like the engine's (WAL, `busy_timeout`,
    foreign keys, no implicit transactions: the caller says `BEGIN IMMEDIATE`), for work that
    runs a whole transaction in one thread hop; through aiosqlite every statement, cursor and
    commit is a hop of its own. Its writes queue with the engine's on the file lock.

    WAL with synchronous=NORMAL: a commit is not fsynced (a checkpoint, or the next commit of
    a FULL connection, syncs it). A process crash loses nothing committed; a power cut may
    lose the last commits (decision 0020). An fsync per commit cost ~300 us of CPU and ~4 ms
    of wall time here. The engine's own connections stay FULL.
    """
    connection = sqlite3.connect(path, isolation_level=None)
    _prepare_sqlite_connection(cast(DBAPIConnection, connection), cast(ConnectionPoolEntry, None))
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _sqlite_engine(url: URL) -> AsyncEngine:
    in_memory = url.database in (None, "", ":memory:")
    # A memory database keeps SQLAlchemy's single-connection StaticPool; a file gets a
    # one-connection queue pool (writers queue in the pool, see the module docstring).
    pooling: dict[str, object] = (
        {} if in_memory else {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
    )
    engine = create_async_engine(url, **pooling)
    event.listen(engine.sync_engine, "connect", _prepare_sqlite_connection)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _prepare_sqlite_connection(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    connection = cast(_SQLiteDriverConnection, dbapi_connection)
    # The driver must not issue BEGIN/COMMIT on its own: `_begin_immediate` does.
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor: _SQLiteCursor) -> None:
    """Switch the database file to WAL, once: the mode is stored in the file."""
    cursor.execute("PRAGMA journal_mode")
    (mode,) = cursor.fetchone()
    if mode in ("wal", "memory"):
        return
    # Two processes opening a new file both try to switch; SQLite answers the loser BUSY at
    # once, without waiting (deadlock avoidance), so it retries. This blocks the event loop
    # for milliseconds, only on a database's first use, only in that race.
    for _ in range(_WAL_SWITCH_ATTEMPTS - 1):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(_WAL_SWITCH_PAUSE_S)
        else:
            return
    cursor.execute("PRAGMA journal_mode = WAL")


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgresql_engine(url: URL) -> AsyncEngine:
    connect_args: dict[str, object] = {}
    query = dict(url.query)
    search_path = query.pop("search_path", None)
    if search_path is not None:
        # Sent in the startup packet: no extra round trip, survives pool resets.
        connect_args["server_settings"] = {"search_path": search_path}
        url = url.set(query=query)
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)
