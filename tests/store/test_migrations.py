"""Migrations: idempotent, safe when processes race, and equal to `tables.metadata`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import create_engine, current_revision, head_revision, upgrade
from gateway.store.migrate import alembic_config
from gateway.store.schema import metadata

ROOT = Path(__file__).parent.parent.parent

# Two processes wait for each other after their imports, then migrate at the same moment.
RACER = """
import asyncio, sys, time
from pathlib import Path
from gateway.store import upgrade
url, barrier, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
(barrier / me).touch()
deadline = time.monotonic() + 30
while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
    time.sleep(0.001)
asyncio.run(upgrade(url))
"""


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_twice_is_idempotent(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        assert await _tables(engine) == {*metadata.tables, "alembic_version"}
    finally:
        await engine.dispose()


async def test_upgrade_takes_a_url(db_url: str) -> None:
    await upgrade(db_url)
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_in_one_process(db_url: str) -> None:
    shared = create_engine(db_url)
    try:
        # Separate engines race on the database; a shared one on its own pool.
        await asyncio.gather(upgrade(db_url), upgrade(db_url), upgrade(shared), upgrade(shared))
        assert await current_revision(shared) == head_revision()
    finally:
        await shared.dispose()


async def test_concurrent_upgrades_from_two_processes(db_url: str, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RACER,
            db_url,
            str(barrier),
            str(index),
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        for index in range(2)
    ]
    outcomes = [await racer.communicate() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], [err for _, err in outcomes]
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_equals_the_metadata(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


def _downgrade_to_base(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_every_migration_reverts_cleanly(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to_base)
        assert await _tables(engine) == {"alembic_version"}
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
