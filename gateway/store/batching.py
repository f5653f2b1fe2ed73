"""Group commit: rows handed over one by one, inserted many per transaction (decision 0019).

`BatchWriter.submit` queues a row and returns; a background task inserts what is queued in
one transaction as soon as `batch_max` rows wait or `interval_s` after the first one. The
queued items stay readable (`pending`) until their transaction commits, so the process that
wrote them reads its own writes. A failing store is retried with exponential backoff;
nothing is dropped while the process runs: once `max_pending` rows wait, `submit` waits too
(backpressure). `close` flushes what is queued, retrying for at most `grace_s`; rows still
unwritten then are counted and logged as lost.

On a SQLite file a batch is one transaction in one thread hop, on a plain sqlite3 connection
of the writer's own thread (`connect_sqlite_file`), with one prepared INSERT: through
aiosqlite each statement, cursor and commit would wake the loop again, and SQLAlchemy's
per-statement work was most of a small batch's cost. PostgreSQL (asyncpg) needs no thread:
the async engine it is; so are the retry after a failure and rows that leave a defaulted
column out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import structlog
from sqlalchemy import Connection, Dialect, Table, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import connect_sqlite_file, sqlite_file

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_BATCH_MAX: Final = 200
DEFAULT_INTERVAL_S: Final = 0.005
DEFAULT_MAX_PENDING: Final = 10_000
DEFAULT_RETRY_BASE_S: Final = 0.05
DEFAULT_RETRY_MAX_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How a `BatchWriter` groups, bounds and retries.

    Attributes:
        batch_max: rows per transaction at most; this many waiting flush at once.
        interval_s: how long the first waiting row waits for company.
        max_pending: rows queued before `submit` waits for the store.
        retry_base_s: the first pause after a failed transaction, doubled per failure.
        retry_max_s: the longest pause.
    """

    batch_max: int = DEFAULT_BATCH_MAX
    interval_s: float = DEFAULT_INTERVAL_S
    max_pending: int = DEFAULT_MAX_PENDING
    retry_base_s: float = DEFAULT_RETRY_BASE_S
    retry_max_s: float = DEFAULT_RETRY_MAX_S

    def __post_init__(self) -> None:
        if self.batch_max < 1 or self.max_pending < self.batch_max:
            raise ValueError("batch_max must be positive and max_pending at least batch_max")
        if self.interval_s < 0 or self.retry_base_s <= 0 or self.retry_max_s < self.retry_base_s:
            raise ValueError("intervals must not be negative, retries must be positive")


class BatchWriter(Generic[T]):
    """Inserts items of type `T` into `table`, many per transaction.

    Args:
        engine: the metadata store.
        table: where the rows go; its `id` column is the items' key.
        values: an item's row.
        limits: grouping, bounds and retries.
        on_batch: called with ("written" | "failed" | "lost", rows) for the metrics.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        values: Callable[[T], Mapping[str, Any]],
        *,
        limits: BatchLimits | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._table = table
        self._values = values
        self._limits = limits or BatchLimits()
        self._on_batch = on_batch
        self._queue: dict[str, T] = {}
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failures = 0
        self._writing = asyncio.Lock()  # the background writer and `flush` take turns
        self._file: str | None = None
        self._thread: ThreadPoolExecutor | None = None  # the one thread that uses `_connection`
        self._connection: sqlite3.Connection | None = None

    def pending(self) -> list[T]:
        """The items handed over and not committed yet, oldest first."""
        return list(self._queue.values())

    def find(self, key: str) -> T | None:
        """The pending item with this id, if it is still pending."""
        return self._queue.get(key)

    def start(self) -> None:
        """Start the background writer."""
        self._file = sqlite_file(self._engine)
        if self._file is not None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="batch-writer")
        self._task = asyncio.create_task(self._write_forever(), name="batch-writer")

    async def submit(self, key: str, item: T) -> None:
        """Queue `item` (its row's `id` is `key`); waits while `max_pending` rows wait.

        Without a running writer (not started, or closed) the row is inserted at once.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: only when inserting at once failed.
        """
        if self._task is None or self._closing:
            async with self._engine.begin() as connection:
                await connection.execute(insert(self._table).values(**self._values(item)))
            return
        async with self._room:
            await self._room.wait_for(lambda: len(self._queue) < self._limits.max_pending)
        self._queue[key] = item
        self._wake.set()
        if len(self._queue) >= self._limits.batch_max:
            self._full.set()

    async def flush(self) -> None:
        """Write everything queued now (retrying as the writer does); for tests and close."""
        while self._queue:
            await self._write_batch()

    async def close(self, grace_s: float = 10.0) -> int:
        """Stop taking rows, flush the queue for at most `grace_s`; the count of rows lost."""
        self._closing = True
        self._wake.set()
        self._full.set()
        deadline = asyncio.get_running_loop().time() + grace_s
        task, self._task = self._task, None
        if task is not None:
            # The writer drains the queue and ends; cancelled only if the store stays down.
            done, _ = await asyncio.wait([task], timeout=grace_s)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # A shutdown may have cancelled the writer already (`asyncio.run` cancels every task
        # when a signal ends the loop): what it left is written here.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self.flush()
        lost = len(self._queue)
        if lost:
            log.error("batched_rows_lost_at_shutdown", table=self._table.name, rows=lost)
            self._count("lost", lost)
            self._queue.clear()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.submit(self._close_file)  # after a batch still running there
            thread.shutdown(wait=False)
        return lost

    async def _write_forever(self) -> None:
        while not (self._closing and not self._queue):
            await self._wake.wait()
            if len(self._queue) < self._limits.batch_max and not self._closing:
                # Wait for company: a full batch or the interval, whichever comes first.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._limits.interval_s):
                        await self._full.wait()
            if self._queue:
                await self._write_batch()
            if not self._queue and not self._closing:
                self._wake.clear()

    async def _write_batch(self) -> None:
        """Insert the oldest `batch_max` queued rows in one transaction, or pause on failure."""
        async with self._writing:
            await self._write_locked()

    async def _write_locked(self) -> None:
        batch = dict(list(self._queue.items())[: self._limits.batch_max])
        if not batch:
            return
        try:
            await self._insert(batch)
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            self._failures += 1
            self._count("failed", len(batch))
            pause = min(
                self._limits.retry_base_s * 2 ** min(self._failures - 1, 20),
                self._limits.retry_max_s,
            )
            log.warning(
                "batch_write_failed",
                table=self._table.name,
                rows=len(batch),
                error=type(exc).__name__,
                retry_in_s=pause,
            )
            await asyncio.sleep(pause)
            return
        self._failures = 0
        for key in batch:
            self._queue.pop(key, None)
        if len(self._queue) < self._limits.batch_max and not self._closing:
            self._full.clear()
        self._count("written", len(batch))
        async with self._room:
            self._room.notify_all()

    async def _insert(self, batch: Mapping[str, T]) -> None:
        retry = self._failures > 0
        if self._thread is not None and not retry:
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(self._thread, self._insert_file, batch):
                return
        rows = self._rows(batch)
        async with self._engine.begin() as connection:
            await connection.run_sync(self._insert_rows, rows, retry)

    def _rows(self, batch: Mapping[str, T]) -> dict[str, dict[str, Any]]:
        return {key: dict(self._values(item)) for key, item in batch.items()}

    def _insert_file(self, batch: Mapping[str, T]) -> bool:
        """In the writer's thread: the batch in one transaction of its own connection; False
        (nothing done) when the rows need SQLAlchemy's insert."""
        rows = self._rows(batch)  # built here: the loop only hands the batch over
        plain = _PlainInsert.of(self._table, self._engine.dialect, rows)
        if plain is None or self._file is None:
            return False
        if self._connection is None:
            self._connection = connect_sqlite_file(self._file)
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(plain.sql, plain.parameters(rows.values()))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise
        return True

    def _close_file(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _insert_rows(
        self, connection: Connection, rows: dict[str, dict[str, Any]], retry: bool
    ) -> None:
        """Insert `rows` (by id) in the caller's transaction; after a failure, skip the ids
        already stored (the last commit may have happened with its answer lost)."""
        if retry:
            id_column = self._table.c.id
            there = connection.execute(select(id_column).where(id_column.in_(rows)))
            written = set(there.scalars())
            rows = {key: row for key, row in rows.items() if key not in written}
        if rows:
            connection.execute(insert(self._table), list(rows.values()))

    def _count(self, outcome: str, rows: int) -> None:
        if self._on_batch is not None:
            self._on_batch(outcome, rows)


@dataclass(frozen=True, slots=True)
class _PlainInsert:
    """One prepared INSERT of the given columns and their types' bind processors: the rows
    go to the driver's `executemany` as tuples, without SQLAlchemy's per-statement
    execution context (the SQLite writer's thread spent most of a batch there)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @staticmethod
    def of(
        table: Table, dialect: Dialect, rows: Mapping[str, Mapping[str, Any]]
    ) -> _PlainInsert | None:
        """The statement for these rows, or None when a column they leave out has a default
        that only SQLAlchemy's insert would fill in."""
        names = tuple(next(iter(rows.values()), {}))
        if not names or any(
            column.name not in names and column.default is not None for column in table.columns
        ):
            return None
        return _plain_insert(table, dialect, names)

    def parameters(self, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as the driver's positional parameters, each value bound as its type says."""
        pairs = tuple(zip(self.names, self.processors, strict=True))
        return [
            tuple(row[name] if bind is None else bind(row[name]) for name, bind in pairs)
            for row in rows
        ]


@functools.lru_cache(maxsize=16)
def _plain_insert(table: Table, dialect: Dialect, names: tuple[str, ...]) -> _PlainInsert:
    compiled = insert(table).compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())  # the positional (qmark) parameters' order
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    )
    return _PlainInsert(str(compiled), order, processors)
