"""Where a job's datagrid goes: spooled to disk while the script runs, then a dataset version.

The worker sends rows in chunks of 10,000 while the script runs, but their final types are
known only at the end (`magicParse*` infers them over every row; `runtime.grid`). So the
chunks are appended to a spool file as they come (the gateway never holds more than one),
and once the run succeeded they are converted chunk by chunk into the CSV body of a
dataset upload with the final columns as its schema: the dataset service streams that into
a new part file like any upload (decision 0021), and a failed run leaves nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

from runtime.grid import finalize_rows
from runtime.model import Column, JsonValue
from writeback.datasets.columns import STORAGE_OF, DatasetColumn
from writeback.jobs.models import Progress


class CountingSink:
    """The rows of a job that writes no dataset (writeback): counted, then dropped."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    async def write(self, columns: Sequence[str], rows: list[list[JsonValue]]) -> None:
        """Count a chunk."""
        self._progress.rows_read += len(rows)

    async def finish(self, columns: Sequence[Column]) -> None:
        """Nothing to keep."""

    async def abort(self) -> None:
        """Nothing to drop."""


class SpoolSink:
    """A run's datagrid chunks in a spool file, one JSON line `[columns, rows]` per chunk."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.path = path
        self._progress = progress
        self._file: IO[str] | None = None
        self.columns: list[Column] | None = None
        """The final columns, once the run succeeded."""

    async def write(self, columns: Sequence[str], rows: list[list[JsonValue]]) -> None:
        """Append a chunk to the spool."""
        line = json.dumps([list(columns), rows], separators=(",", ":")) + "\n"
        await asyncio.to_thread(self._append, line)
        self._progress.rows_read += len(rows)

    async def finish(self, columns: Sequence[Column]) -> None:
        """The run succeeded with these columns."""
        self.columns = list(columns)
        await asyncio.to_thread(self._close)

    async def abort(self) -> None:
        """The run failed: drop the spool."""
        self.columns = None
        await asyncio.to_thread(self.remove)

    def remove(self) -> None:
        """Close and delete the spool file."""
        self._close()
        with suppress(FileNotFoundError):
            self.path.unlink()

    def dataset_columns(self) -> tuple[DatasetColumn, ...]:
        """The final columns as a dataset's schema."""
        return tuple(DatasetColumn(c.name, c.type, STORAGE_OF[c.type]) for c in self.columns or ())

    async def csv_body(self) -> AsyncIterator[bytes]:
        """The spooled rows as CSV with the final types, one chunk at a time."""
        chunks = _csv_chunks(self.path, self.columns or [])
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                return
            yield chunk

    def _append(self, line: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(line)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_chunks(spool: Path, columns: Sequence[Column]) -> Iterator[bytes]:
    """The header, then each spooled chunk's rows converted to the final types, as CSV."""
    names = [c.name for c in columns]
    yield _csv([names])
    if not os.path.exists(spool):
        return
    with spool.open(encoding="utf-8") as lines:
        for line in lines:
            chunk_columns, rows = json.loads(line)
            if chunk_columns != names[: len(chunk_columns)]:
                # Columns added later (magicParse* unions keys): place cells by name.
                where = {name: i for i, name in enumerate(chunk_columns)}
                rows = [
                    [row[where[n]] if where.get(n, len(row)) < len(row) else None for n in names]
                    for row in rows
                ]
            yield _csv(_cells(finalize_rows(columns, rows)))


def _cells(rows: list[list[JsonValue]]) -> Iterator[list[object]]:
    for row in rows:
        yield [
            "" if v is None else ("true" if v is True else "false" if v is False else v)
            for v in row
        ]


def _csv(rows: Iterator[list[object]] | list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


STALE_SPOOL_S = 3600.0


def sweep_spools(folder: Path, *, now: float | None = None) -> int:
    """Remove spool files a killed gateway left (untouched for an hour: a job's attempt lasts
    at most its deadline, and the folder may be shared by replicas); return how many."""
    moment = time.time() if now is None else now
    removed = 0
    with suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".spool") and entry.stat().st_mtime < moment - STALE_SPOOL_S:
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed += 1
    return removed
