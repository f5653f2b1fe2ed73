"""The datasets a script reads (`DOMO.listDatasets/getDataset/queryData`), served in pages.

A run reads datasets through a `DatasetCatalog`: the customer's stored datasets for the
service's runs, local files for `gateway script run --dataset`. Either way the SQL runs in
the sandbox of SPEC 7 (`writeback.datasets.sandbox`). The first use of a dataset in a run
pins its current version until the run ends, so every page of the run reads one version.

Pages (decision 0023): `queryData(sql, {offset, limit})` asks for rows `offset` to
`offset + limit`. The run keeps the query's cursor open between calls, so a script that
reads the pages in order executes the query once and each page continues where the last
one stopped; another offset re-executes the query and skips to it. Without a limit a query
answers every row up to `max_rows` and refuses a larger result, naming the paging API.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gateway.errors import GatewayError, NotFound
from gateway.identity.principal import Principal
from runtime.host import HostCallError
from runtime.model import JsonValue
from writeback.datasets.columns import DatasetColumn
from writeback.datasets.load import FileFormat, LoadLimits, load_part
from writeback.datasets.sandbox import QueryCursor, SqlSandbox, SqlTable
from writeback.datasets.service import DatasetService

MAX_PAGE_ROWS: Final = 10_000
"""The most rows one page may ask for (a page crosses the worker's pipe as one frame)."""
MAX_QUERY_ROWS: Final = 100_000
"""The most rows a query without a limit answers; beyond, the script reads pages."""
OPEN_CURSORS: Final = 4
"""Queries a run keeps open for their next page (the least recently used one is closed)."""
MAX_LISTED: Final = 10_000


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What `DOMO.getDataset` shows of a dataset."""

    id: str
    name: str
    row_count: int
    columns: tuple[DatasetColumn, ...]

    def document(self) -> dict[str, JsonValue]:
        """The object a script gets (`rowCount`, `columns: [{name, type}]`)."""
        return {
            "id": self.id,
            "name": self.name,
            "rowCount": self.row_count,
            "columns": [{"name": c.name, "type": c.type.value} for c in self.columns],
        }


class DatasetCatalog(Protocol):
    """The datasets one run may read."""

    async def ids(self) -> list[str]:
        """Their ids, oldest first."""

    def open(self, dataset_id: str) -> AbstractAsyncContextManager[tuple[DatasetInfo, SqlTable]]:
        """The dataset's current version as a sandbox table, kept while the block runs.

        Raises:
            NotFound: the run may not read such a dataset (or none exists).
        """


class CustomerDatasets:
    """The stored datasets of the run's customer that its user may read (decision 0021)."""

    def __init__(self, service: DatasetService, principal: Principal) -> None:
        self._service = service
        self._principal = principal

    async def ids(self) -> list[str]:
        """Every dataset of the customer (every user of a customer reads them all)."""
        found: list[str] = []
        cursor: str | None = None
        while len(found) < MAX_LISTED:
            page, cursor = await self._service.list_datasets(self._principal, 500, cursor)
            found += [dataset.id for dataset in page]
            if cursor is None:
                break
        return found[:MAX_LISTED]

    @asynccontextmanager
    async def open(self, dataset_id: str) -> AsyncIterator[tuple[DatasetInfo, SqlTable]]:
        """The current version, pinned while the block runs.

        Raises:
            NotFound: no such dataset in the customer (another customer's is the same).
        """
        async with self._service.reading(self._principal, dataset_id) as (dataset, table):
            info = DatasetInfo(
                dataset.id, dataset.name, dataset.current.row_count, dataset.current.columns
            )
            yield info, table


@dataclass(frozen=True, slots=True)
class LocalDataset:
    """A file given to `script run --dataset ID=PATH[:NAME]`, loaded into a part file."""

    info: DatasetInfo
    table: SqlTable


def file_format_of(path: Path) -> FileFormat:
    """The format of a local dataset file, by its suffix.

    Raises:
        ValueError: a suffix that is none of `.csv`, `.json`, `.jsonl`, `.ndjson`, `.parquet`.
    """
    suffix = path.suffix.lower()
    formats = {
        ".csv": FileFormat.CSV,
        ".json": FileFormat.JSON,
        ".jsonl": FileFormat.NDJSON,
        ".ndjson": FileFormat.NDJSON,
        ".parquet": FileFormat.PARQUET,
    }
    if suffix not in formats:
        raise ValueError(f"{path}: a dataset is a .csv, .jsonl, .ndjson, .json or .parquet file")
    return formats[suffix]


def load_local(dataset_id: str, path: Path, name: str, folder: Path) -> LocalDataset:
    """Load a local file into a part file in `folder` (blocking), as an upload would be.

    Raises:
        ValueError: the file's suffix is unknown.
        UploadRefused: DuckDB cannot load the file.
    """
    target = folder / f"{len(list(folder.iterdir()))}.duckdb"
    loaded = load_part(path, file_format_of(path), target, LoadLimits())
    info = DatasetInfo(dataset_id, name, loaded.rows, loaded.columns)
    return LocalDataset(info, SqlTable((target,)))


class LocalDatasets:
    """The datasets of `script run --dataset`: local files, in the order given."""

    def __init__(self, datasets: Sequence[LocalDataset]) -> None:
        self._datasets = {dataset.info.id: dataset for dataset in datasets}

    async def ids(self) -> list[str]:
        """The ids given on the command line."""
        return list(self._datasets)

    @asynccontextmanager
    async def open(self, dataset_id: str) -> AsyncIterator[tuple[DatasetInfo, SqlTable]]:
        """The loaded file.

        Raises:
            NotFound: no `--dataset` has this id.
        """
        found = self._datasets.get(dataset_id)
        if found is None:
            raise NotFound("no such dataset")
        yield found.info, found.table


@dataclass(slots=True)
class _Open:
    """A query kept open between pages: where its next row is, and how to close it."""

    cursor: QueryCursor
    position: int
    close: AsyncExitStack


class ScriptDatasets:
    """One run's `DatasetReader`: pinned versions, open cursors, sandbox errors as host errors.

    Use it as an async context manager around the run: leaving closes its queries and
    releases the versions it pinned.
    """

    def __init__(
        self,
        catalog: DatasetCatalog,
        sandbox: SqlSandbox,
        *,
        max_rows: int = MAX_QUERY_ROWS,
        max_page: int = MAX_PAGE_ROWS,
    ) -> None:
        self._catalog = catalog
        self._sandbox = sandbox
        self._max_rows = max_rows
        self._max_page = max_page
        self._pins = AsyncExitStack()
        self._tables: dict[str, tuple[DatasetInfo, SqlTable]] = {}
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()

    async def __aenter__(self) -> ScriptDatasets:
        return self

    async def __aexit__(self, *_: object) -> None:
        for key in list(self._open):
            await self._close(key)
        await self._pins.aclose()

    async def list(self) -> list[str]:
        """The ids of the datasets the run may read."""
        return await self._catalog.ids()

    async def describe(self, dataset_id: str) -> dict[str, JsonValue]:
        """`{id, name, rowCount, columns}` of the version the run reads.

        Raises:
            HostCallError: `dataset_not_found`.
        """
        info, _ = await self._table(dataset_id)
        return info.document()

    async def query(
        self, dataset_id: str, sql: str, offset: int, limit: int | None
    ) -> dict[str, JsonValue]:
        """Rows `offset` to `offset + limit` of `sql` (every row when `limit` is None).

        Raises:
            HostCallError: `dataset_not_found`, `sql_refused`, `sql_timeout`, `bad_call`
                (a page larger than the cap) or `result_too_large`.
        """
        if limit is not None and limit > self._max_page:
            raise HostCallError(
                "bad_call", f"a page has at most {self._max_page} rows, not {limit}"
            )
        try:
            if limit is None:
                return await self._everything(dataset_id, sql, offset)
            return await self._page(dataset_id, sql, offset, limit)
        except GatewayError as exc:
            raise HostCallError(exc.code, exc.detail) from None

    async def _page(
        self, dataset_id: str, sql: str, offset: int, limit: int
    ) -> dict[str, JsonValue]:
        key = (dataset_id, sql)
        found = self._open.get(key)
        if found is None or found.position != offset:
            if found is not None:
                await self._close(key)
            found = await self._start(dataset_id, sql)
            self._open[key] = found
            await self._skip(found, offset)
            while len(self._open) > OPEN_CURSORS:
                await self._close(next(iter(self._open)))
        self._open.move_to_end(key)
        try:
            rows = await found.cursor.fetch(limit)
        except GatewayError:
            await self._close(key)
            raise
        found.position += len(rows)
        return {"columns": _columns(found.cursor), "rows": rows, "more": len(rows) == limit}

    async def _everything(self, dataset_id: str, sql: str, offset: int) -> dict[str, JsonValue]:
        opened = await self._start(dataset_id, sql)
        async with opened.close:
            await self._skip(opened, offset)
            rows: list[list[JsonValue]] = []
            while True:
                page = await opened.cursor.fetch(self._max_page)
                rows += page
                if len(rows) > self._max_rows:
                    raise HostCallError(
                        "result_too_large",
                        f"the query answers more than {self._max_rows} rows: read it in pages "
                        "with queryData(sql, {offset, limit}) or queryPages(sql)",
                    )
                if len(page) < self._max_page:
                    break
            return {"columns": _columns(opened.cursor), "rows": rows, "more": False}

    async def _start(self, dataset_id: str, sql: str) -> _Open:
        _, table = await self._table(dataset_id)
        stack = AsyncExitStack()
        try:
            cursor = await stack.enter_async_context(self._sandbox.cursor(table, sql))
        except BaseException:
            await stack.aclose()
            raise
        return _Open(cursor, 0, stack)

    async def _skip(self, opened: _Open, offset: int) -> None:
        while opened.position < offset:
            rows = await opened.cursor.fetch(min(self._max_page, offset - opened.position))
            if not rows:
                break
            opened.position += len(rows)

    async def _close(self, key: tuple[str, str]) -> None:
        await self._open.pop(key).close.aclose()

    async def _table(self, dataset_id: str) -> tuple[DatasetInfo, SqlTable]:
        found = self._tables.get(dataset_id)
        if found is None:
            try:
                found = await self._pins.enter_async_context(self._catalog.open(dataset_id))
            except NotFound:
                raise HostCallError(
                    "dataset_not_found", f"no dataset {dataset_id!r} is readable by this run"
                ) from None
            self._tables[dataset_id] = found
        return found


def _columns(cursor: QueryCursor) -> list[JsonValue]:
    return [{"name": c.name, "type": c.type.value} for c in cursor.columns]
