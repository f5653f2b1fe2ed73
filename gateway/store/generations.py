"""One invalidation mechanism for every in-process cache, across replicas (decision 0019).

Every write that changes a cached fact bumps its area's row of `cache_generations` in its
own transaction (`Generations.begin`, or `bump` inside a transaction of the caller's) and
drops this process's caches of the area once it has committed. Every process polls the rows
every `poll_s` (one small query, not one per request) and drops the caches of each area
whose generation moved: another process wrote. Caches are served only while the polls are
current (`fresh`): if they stall for `stale_after_s`, every lookup goes to the store again.
A `Generations` that was never started never serves a cache (the CLI, most service tests),
but it still bumps, so the processes that do cache hear of its writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Final, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.cache import Cache, Clock
from gateway.store.tables import cache_generations

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_POLL_S: Final = 1.0
# Polls that stalled for this many intervals stop the caches (they may miss others' writes).
STALE_AFTER_POLLS: Final = 5


class Area(StrEnum):
    """What a generation covers: every cache built from these tables."""

    IDENTITY = "identity"  # tokens, users (principals)
    CONNECTORS = "connectors"  # connectors, scripts, versions, scopes, client secrets
    APPS = "apps"  # apps, instances, account mappings
    ACCOUNTS = "accounts"  # accounts, their secrets, shares, OAuth tokens


async def bump(connection: AsyncConnection, *areas: Area) -> None:
    """Move the generations of `areas` on, inside the caller's transaction.

    The rows are written in one order, last in the transaction, so two writers never wait
    for each other's rows the other way round and the rows are held only until the commit.
    """
    table = cache_generations
    for area in sorted(set(areas)):
        upsert = (
            postgresql_insert(table)
            if connection.dialect.name == "postgresql"
            else sqlite_insert(table)
        )
        statement = upsert.values(area=area.value, generation=1)
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.area],
                set_={"generation": table.c.generation + 1},
            )
        )


class Generations:
    """This process's view of the generations, and the caches they invalidate.

    Args:
        engine: the metadata store.
        poll_s: seconds between polls.
        stale_after_s: polls older than this stop the caches (default 5 intervals).
        clock: monotonic seconds (tests pass their own).
        on_drop: called with (area, "write" | "poll") for each area dropped (metrics).

    Raises:
        ValueError: `poll_s` is not positive.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        poll_s: float = DEFAULT_POLL_S,
        stale_after_s: float | None = None,
        clock: Clock = time.monotonic,
        on_drop: Callable[[str, str], None] | None = None,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self._engine = engine
        self._poll_s = poll_s
        self._stale_after_s = stale_after_s or poll_s * STALE_AFTER_POLLS
        self._clock = clock
        self._on_drop = on_drop
        self._caches: dict[Area, list[Cache[object, object]]] = {area: [] for area in Area}
        self._seen: dict[str, int] | None = None
        self._polled_at: float | None = None
        self._after_poll: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def cache(
        self,
        area: Area,
        name: str,
        *,
        max_size: int,
        max_age_s: float,
        also: tuple[Area, ...] = (),
    ) -> Cache[K, V]:
        """A new cache that `area`'s writes drop, and those of the areas in `also` (a value
        built from the tables of several areas)."""
        made: Cache[K, V] = Cache(
            name, max_size=max_size, max_age_s=max_age_s, fresh=self.fresh, clock=self._clock
        )
        for each in (area, *also):
            self._caches[each].append(made)  # type: ignore[arg-type]
        return made

    def after_poll(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Also run `callback` after each poll (bookkeeping that must not cost a request)."""
        self._after_poll.append(callback)

    def fresh(self) -> bool:
        """Whether caches may be served: the last successful poll began recently enough."""
        polled = self._polled_at
        return polled is not None and self._clock() - polled <= self._stale_after_s

    @asynccontextmanager
    async def begin(self, *areas: Area) -> AsyncIterator[AsyncConnection]:
        """A transaction that bumps `areas` before it commits and drops their caches after."""
        try:
            async with self._engine.begin() as connection:
                yield connection
                await bump(connection, *areas)
        finally:
            # Also after a failure: a commit whose answer was lost may have happened.
            self.drop(*areas)

    def drop(self, *areas: Area, cause: str = "write") -> None:
        """Empty this process's caches of `areas` (after a write committed here)."""
        for area in areas:
            for cache in self._caches[area]:
                cache.clear()
            if self._on_drop is not None:
                self._on_drop(area.value, cause)

    async def poll(self) -> None:
        """Read every generation once; drop the caches of the areas that moved.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, OSError: the store did not answer (the caches
                go stale after `stale_after_s` without a successful poll).
        """
        started = self._clock()
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(cache_generations))).all()
        current = {row.area: row.generation for row in rows}
        if self._seen is not None:
            moved = [area for area in Area if current.get(area) != self._seen.get(area)]
            self.drop(*moved, cause="poll")
        self._seen = current
        self._polled_at = started
        for callback in self._after_poll:
            await callback()

    async def start(self) -> None:
        """Poll once, then every `poll_s` in the background until `close`.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, OSError: the first poll failed.
        """
        await self.poll()
        self._task = asyncio.create_task(self._poll_forever(), name="cache-generations")

    async def close(self) -> None:
        """Stop polling (the caches stop being served) and run the bookkeeping a last time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._polled_at = None
        for callback in self._after_poll:
            try:
                await callback()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("cache_bookkeeping_failed_at_close", error=type(exc).__name__)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.poll()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("cache_generations_poll_failed", error=type(exc).__name__)
