"""Database fixtures for every test package: each test runs on SQLite and on PostgreSQL.

Registered by `tests/conftest.py` (`pytest_plugins`). The backend is the parameter of
`db_backend`, so a test asking for any of these fixtures runs twice, `[sqlite]` and
`[postgresql]`. PostgreSQL is the server named by `GATEWAY_TEST_DATABASE_URL` (CI sets it):
when the variable is unset those tests are skipped with that reason; when it is set and the
server cannot be reached they fail.

Isolation (decision 0005). A test session owns the PostgreSQL schemas named
`gw_test_<unix time>_<random>*` and drops them all when it ends; schemas of sessions that
died more than six hours ago are swept at the start of the next one.

- `db_url`: an empty, never-migrated database of the test's own: a SQLite file in `tmp_path`,
  or a PostgreSQL schema created for the test and dropped after it (~15 ms). For migration
  tests and for anything that starts processes.
- `engine` / `migrated_db_url`: a database at the head revision with no rows in it. SQLite:
  a copy of a template file migrated once per session (<1 ms). PostgreSQL: the session's
  schema, migrated once, whose rows are deleted after each test (~5 ms) - so a test using
  these must not change the schema, and must have closed its connections when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import pytest
from sqlalchemy import delete, insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateway.store.schema  # noqa: F401  (registers every table module on `metadata`)
from gateway.store import create_engine, new_id, upgrade, utcnow
from gateway.store.tables import customers, metadata, users

DATABASE_URL_VARIABLE: Final = "GATEWAY_TEST_DATABASE_URL"
SCHEMA_PREFIX: Final = "gw_test_"
STALE_AFTER_S: Final = 6 * 3600
SETUP_TIMEOUT_S: Final = 30.0
_STALE_SCHEMA: Final = re.compile(rf"{SCHEMA_PREFIX}(\d+)_[0-9a-f]+(_\d+)?")

T = TypeVar("T")


def run_in_thread(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run a coroutine to completion on a loop of its own, in a thread of its own.

    Session fixtures are synchronous; a private loop in a private thread cannot disturb the
    loop pytest-asyncio gives each test.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(asyncio.wait_for(make(), SETUP_TIMEOUT_S)))
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="db-fixture")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


def with_search_path(url: str, schema: str) -> str:
    """`url` with its tables in `schema` (see `gateway.store.engine`)."""
    return make_url(url).update_query_dict({"search_path": schema}).render_as_string(False)


@dataclass
class PostgresSession:
    """The PostgreSQL schemas of this test session."""

    server_url: str
    prefix: str
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def migrated_url(self) -> str:
        """The session's schema, at the head revision; tests delete their rows after them."""
        return with_search_path(self.server_url, self.prefix)

    def new_schema_name(self) -> str:
        """A schema name of this session not used before."""
        return f"{self.prefix}_{next(self._numbers)}"


async def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _schemas_like(url: str, prefix: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE left(nspname, length(:p)) = :p"),
                {"p": prefix},
            )
            return list(found.scalars())
    finally:
        await engine.dispose()


async def _drop_schemas(url: str, names: list[str]) -> None:
    if names:
        await _execute(url, *(f'DROP SCHEMA IF EXISTS "{name}" CASCADE' for name in names))


async def _start_postgres_session(url: str, prefix: str) -> None:
    now = time.time()
    stale = [
        name
        for name in await _schemas_like(url, SCHEMA_PREFIX)
        if (match := _STALE_SCHEMA.fullmatch(name)) and now - int(match[1]) > STALE_AFTER_S
    ]
    await _drop_schemas(url, stale)
    await _execute(url, f'CREATE SCHEMA "{prefix}"')
    await upgrade(with_search_path(url, prefix))


async def _end_postgres_session(url: str, prefix: str) -> None:
    await _drop_schemas(url, await _schemas_like(url, prefix))


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[PostgresSession]:
    """This session's PostgreSQL schemas; skips when no server is configured."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if not url:
        pytest.skip(f"{DATABASE_URL_VARIABLE} is not set")
    prefix = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
    try:
        run_in_thread(lambda: _start_postgres_session(url, prefix))
    except Exception as exc:
        with contextlib.suppress(Exception):  # a half-made session schema, if the server is up
            run_in_thread(lambda: _end_postgres_session(url, prefix))
        pytest.fail(f"{DATABASE_URL_VARIABLE} is set but PostgreSQL is not usable: {exc!r}")
    try:
        yield PostgresSession(url, prefix)
    finally:
        run_in_thread(lambda: _end_postgres_session(url, prefix))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session, copied by each test that needs it."""
    path = tmp_path_factory.mktemp("db-template") / "gateway.db"
    run_in_thread(lambda: upgrade(f"sqlite:///{path}"))
    # Disposing the engine checkpointed the write-ahead log: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test run: `sqlite` or `postgresql`."""
    backend: str = request.param
    if backend == "postgresql":
        request.getfixturevalue("postgres_session")  # skips or fails here, before the test
    return backend


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (not migrated) that belongs to this test alone."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    session: PostgresSession = request.getfixturevalue("postgres_session")
    schema = session.new_schema_name()
    run_in_thread(lambda: _execute(session.server_url, f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(session.server_url, schema)
    finally:
        run_in_thread(lambda: _drop_schemas(session.server_url, [schema]))


@pytest.fixture
def migrated_db_url(
    db_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """The URL of a database at the head revision with no rows (see the module docstring)."""
    if db_backend == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    session: PostgresSession = request.getfixturevalue("postgres_session")
    try:
        yield session.migrated_url
    finally:
        run_in_thread(lambda: _delete_rows(session.migrated_url))


async def _delete_rows(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(migrated_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `migrated_db_url` (disposed after the test)."""
    store = create_engine(migrated_db_url)
    try:
        yield store
    finally:
        await store.dispose()


async def make_customer(connection: AsyncConnection, name: str | None = None) -> str:
    """Insert a customer (a unique name unless given) and return its id."""
    customer_id = new_id()
    await connection.execute(
        insert(customers).values(
            id=customer_id, name=name or f"customer-{customer_id}", created_at=utcnow()
        )
    )
    return customer_id


async def make_user(
    connection: AsyncConnection,
    customer_id: str,
    *,
    email: str | None = None,
    role: str = "member",
) -> str:
    """Insert a user of `customer_id` (a unique email unless given) and return its id."""
    user_id = new_id()
    await connection.execute(
        insert(users).values(
            id=user_id,
            customer_id=customer_id,
            email=email or f"{user_id}@example.com",
            name="Test User",
            role=role,
            created_at=utcnow(),
        )
    )
    return user_id
