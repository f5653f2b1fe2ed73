"""Engine creation: URLs, SQLite connection settings, the search path, concurrent writers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import async_url, create_engine, database_url_for, upgrade
from gateway.store.engine import connect_sqlite_file, sqlite_file
from gateway.store.tables import customers
from tests.dbfixtures import PostgresSession, make_customer


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/gateway.db", "sqlite+aiosqlite:///data/gateway.db"),
        ("sqlite:////abs/gateway.db", "sqlite+aiosqlite:////abs/gateway.db"),
        ("sqlite+aiosqlite:///gateway.db", "sqlite+aiosqlite:///gateway.db"),
        ("postgresql://u@db:5432/gw", "postgresql+asyncpg://u@db:5432/gw"),
        ("postgres://u@db/gw", "postgresql+asyncpg://u@db/gw"),
        ("postgresql+asyncpg://u@db/gw", "postgresql+asyncpg://u@db/gw"),
        (
            "postgresql+psycopg://u@db/gw?sslmode=require",
            "postgresql+asyncpg://u@db/gw?ssl=require",
        ),
    ],
)
def test_urls_are_rewritten_for_the_async_drivers(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        create_engine("mysql://u@db/gw")


def test_the_default_database_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    assert database_url_for(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/gateway.db"
    assert database_url_for("", tmp_path) == f"sqlite:///{tmp_path.resolve()}/gateway.db"
    assert database_url_for("postgresql://db/gw", tmp_path) == "postgresql://db/gw"


async def test_sqlite_connections_are_configured(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            pragmas = [
                await connection.scalar(text(f"PRAGMA {name}"))
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 5000]
    finally:
        await engine.dispose()


async def test_the_writers_file_connection_is_configured_alike_without_an_fsync_per_commit(
    sqlite_url: str,
) -> None:
    engine = create_engine(sqlite_url)
    path = sqlite_file(engine)
    assert path is not None
    connection = connect_sqlite_file(path)
    try:
        pragmas = [
            connection.execute(f"PRAGMA {name}").fetchone()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        ]
        assert pragmas == [("wal",), (1,), (5000,), (1,)]  # synchronous = NORMAL
        assert connection.in_transaction is False  # the writer says BEGIN IMMEDIATE itself
        async with engine.connect() as other:
            assert await other.scalar(text("PRAGMA synchronous")) == 2  # FULL, as before
    finally:
        connection.close()
        await engine.dispose()
    assert sqlite_file(create_engine("sqlite://")) is None  # another database


async def test_migrating_sqlite_leaves_foreign_keys_on(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await upgrade(engine)  # turns them off while it runs, on the pool's one connection
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


async def test_a_memory_database_works() -> None:
    engine = create_engine("sqlite://")
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await make_customer(connection, "acme")
            assert await connection.scalar(select(func.count()).select_from(customers)) == 1
    finally:
        await engine.dispose()


async def test_postgresql_uses_the_search_path_of_the_url(
    postgres_session: PostgresSession,
) -> None:
    engine = create_engine(postgres_session.migrated_url)
    try:
        async with engine.connect() as connection:
            schema = await connection.scalar(text("SELECT current_schema()"))
        assert schema == postgres_session.prefix
    finally:
        await engine.dispose()


async def _add_one(engine: AsyncEngine, customer_id: str, *, swap: bool) -> None:
    """Read a counter, then write it plus one: a lost update would show in the total."""
    while True:
        async with engine.begin() as connection:
            where = customers.c.id == customer_id
            name = await connection.scalar(select(customers.c.name).where(where))
            assert name is not None
            await asyncio.sleep(0)  # let the other tasks in between
            if swap:  # compare-and-swap, as leases and version checks do
                where &= customers.c.name == name
            changed = await connection.execute(
                update(customers).where(where).values(name=str(int(name) + 1))
            )
            if changed.rowcount == 1:
                return


async def _count_concurrently(url: str, *, swap: bool) -> str | None:
    # Two engines stand for two processes; each runs many tasks at once.
    first, second = create_engine(url), create_engine(url)
    try:
        async with first.begin() as connection:
            await connection.execute(insert(customers).values(id="counter", name="0"))
        await asyncio.gather(
            *(
                _add_one(engine, "counter", swap=swap)
                for engine in (first, second)
                for _ in range(25)
            )
        )
        async with first.connect() as connection:
            return await connection.scalar(
                select(customers.c.name).where(customers.c.id == "counter")
            )
    finally:
        await first.dispose()
        await second.dispose()


async def test_concurrent_compare_and_swap_writers(migrated_db_url: str) -> None:
    assert await _count_concurrently(migrated_db_url, swap=True) == "50"


async def test_sqlite_transactions_hold_the_write_lock_from_the_start(sqlite_url: str) -> None:
    # BEGIN IMMEDIATE: even a plain read-modify-write cannot lose an update or fail with
    # SQLITE_BUSY half-way, across engines (processes) too.
    await upgrade(sqlite_url)
    assert await _count_concurrently(sqlite_url, swap=False) == "50"
