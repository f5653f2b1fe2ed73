"""A real gateway for the fuzzer: `create_app` served from a thread on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import delete

from gateway.app import create_app
from gateway.keys import ENGINE, IDENTITY
from gateway.server import GatewayRunner
from gateway.settings import Settings
from gateway.store.tables import metadata
from tests.dbfixtures import (
    DATABASE_URL_VARIABLE,
    PostgresSession,
    _drop_schemas,
    _execute,
    run_in_thread,
    with_search_path,
)

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Served:
    """Where the gateway listens and a platform admin's token."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The headers that sign a request in."""
        return {"Authorization": f"Bearer {self.token}"}


class GatewayThread:
    """`create_app(settings)` on its own event loop in a thread (the fuzzer's client blocks)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._served: Served | None = None
        self._app: web.Application | None = None
        self._url = ""
        self._error: BaseException | None = None

    def start(self) -> Served:
        """Start serving; returns once the gateway answers requests."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the gateway did not start")
        if self._served is None:
            raise RuntimeError("the gateway failed to start") from self._error
        return self._served

    def reset(self) -> Served:
        """Empty the store and bootstrap again: the next requests find nothing earlier ones made.

        Raises:
            RuntimeError: the gateway is not serving.
        """
        if self._app is None:
            raise RuntimeError("the gateway is not serving")
        future = asyncio.run_coroutine_threadsafe(self._reset(self._app), self._loop)
        self._served = future.result(START_TIMEOUT_S)
        return self._served

    async def _reset(self, app: web.Application) -> Served:
        async with app[ENGINE].begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))
        return await self._bootstrap(app)

    async def _bootstrap(self, app: web.Application) -> Served:
        _, token = await app[IDENTITY].bootstrap("fuzz", "fuzz@example.test")
        return Served(self._url, token)

    def stop(self) -> None:
        """Stop serving and wait for the app's cleanup."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        app = create_app(self._settings)
        runner = GatewayRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._served = await self._bootstrap(app)
            self._app = app
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A fresh PostgreSQL schema when the suite has a server (CI has), else None (SQLite).

    PostgreSQL is the stricter store (it refuses NUL in text), so it is the one to fuzz.
    """
    if not os.environ.get(DATABASE_URL_VARIABLE):
        yield None
        return
    session: PostgresSession = request.getfixturevalue("postgres_session")
    schema = session.new_schema_name()
    run_in_thread(lambda: _execute(session.server_url, f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(session.server_url, schema)
    finally:
        run_in_thread(lambda: _drop_schemas(session.server_url, [schema]))


@contextlib.contextmanager
def _gateway(request: pytest.FixtureRequest, data: Path) -> Iterator[GatewayThread]:
    with _database(request) as database_url:
        gateway = GatewayThread(Settings(data_dir=data, workers=1, database_url=database_url))
        gateway.start()
        try:
            yield gateway
        finally:
            gateway.stop()


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """A gateway on a fresh store, shared by the per-operation fuzz."""
    with _gateway(request, tmp_path_factory.mktemp("fuzz") / "data") as gateway:
        yield gateway.reset()


@pytest.fixture
def own_gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GatewayThread]:
    """A gateway of one test's own, which it may `reset` between scenarios."""
    with _gateway(request, tmp_path / "data") as gateway:
        yield gateway
