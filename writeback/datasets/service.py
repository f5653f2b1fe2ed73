"""Datasets of a customer: streamed uploads into immutable versions, queries, removal.

Rights (decision 0021): every user of the customer reads its datasets and creates new
ones; the dataset's owner and the customer's admins replace, append and delete. Another
customer's dataset is 404, whatever the caller.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.datasets.tables import dataset_versions, datasets
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.principal import Principal
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow
from writeback.datasets.columns import DatasetColumn
from writeback.datasets.errors import UploadRefused
from writeback.datasets.load import FileFormat, LoadLimits, load_part, merge_parts
from writeback.datasets.sandbox import QueryResult, SqlSandbox, SqlTable
from writeback.datasets.storage import DatasetFiles

log = structlog.get_logger(__name__)

# A version reads at most this many part files; an append past it merges them into one.
MAX_PARTS: Final = 16
PUBLISH_ATTEMPTS: Final = 3


class WriteMode(StrEnum):
    """How an upload becomes the next version."""

    REPLACE = "replace"
    APPEND = "append"


@dataclass(frozen=True, slots=True)
class Part:
    """One immutable part file of a version."""

    file: str
    rows: int
    size: int

    def document(self) -> dict[str, Any]:
        """The part as the metadata store keeps it."""
        return {"file": self.file, "rows": self.rows, "bytes": self.size}


@dataclass(frozen=True, slots=True)
class Version:
    """An immutable version of a dataset."""

    number: int
    columns: tuple[DatasetColumn, ...]
    parts: tuple[Part, ...]
    row_count: int
    size: int
    mode: WriteMode
    created_by: str
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset with its current version (and, from `get`, every version still kept)."""

    id: str
    customer_id: str
    name: str
    owner_id: str
    created_at: datetime
    updated_at: datetime
    current: Version
    versions: tuple[Version, ...] = ()


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file as it arrives: its format, its body, its declared length, its schema."""

    file_format: FileFormat
    body: AsyncIterable[bytes]
    declared_length: int | None = None
    columns: tuple[DatasetColumn, ...] | None = None


def _version(row: Any) -> Version:
    return Version(
        number=row.number,
        columns=tuple(DatasetColumn.from_document(c) for c in row.columns),
        parts=tuple(Part(p["file"], p["rows"], p["bytes"]) for p in row.parts),
        row_count=row.row_count,
        size=row.size,
        mode=WriteMode(row.mode),
        created_by=row.created_by,
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


def _schema_difference(given: Sequence[DatasetColumn], current: Sequence[DatasetColumn]) -> str:
    """What differs between two column lists, by name and type ('' when nothing does)."""
    known = {c.name: c.type for c in current}
    wanted = {c.name: c.type for c in given}
    notes = [
        f"{n!r} is {t.value}, not {wanted[n].value}"
        for n, t in known.items()
        if n in wanted and wanted[n] is not t
    ]
    notes += [f"{n!r} is missing" for n in known if n not in wanted]
    notes += [f"{n!r} is not a column of the dataset" for n in wanted if n not in known]
    return "; ".join(notes)


class DatasetService:
    """Datasets: metadata in the store, rows in DuckDB part files, queries in the sandbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        files: DatasetFiles,
        sandbox: SqlSandbox,
        *,
        max_upload_bytes: int,
        load_limits: LoadLimits | None = None,
    ) -> None:
        self._engine = engine
        self.files = files
        self.sandbox = sandbox
        self.max_upload_bytes = max_upload_bytes
        self._load_limits = load_limits or LoadLimits()

    async def create(self, principal: Principal, name: str, upload: Upload) -> Dataset:
        """Store a new dataset from an upload; its first version is the file's rows.

        Raises:
            Conflict: the customer has a dataset of that name.
            UploadRefused, UploadTooLarge, UploadInterrupted: the file (nothing is kept).
        """
        await self._check_name_free(principal, name)
        dataset_id = new_id()
        folder = self.files.folder(principal.customer_id, dataset_id)
        columns, part = await self._load(folder, upload, upload.columns)
        now = utcnow()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(datasets).values(
                        id=dataset_id,
                        customer_id=principal.customer_id,
                        owner_id=principal.user_id,
                        name=name,
                        current_version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await self._insert_version(
                    connection, principal, dataset_id, 1, columns, (part,), WriteMode.REPLACE
                )
        except BaseException as exc:
            await asyncio.to_thread(_remove, folder / part.file)
            if isinstance(exc, IntegrityError):
                raise Conflict(f"your customer already has a dataset named {name!r}") from None
            raise
        log.info("dataset_created", dataset_id=dataset_id, rows=part.rows, size=part.size)
        return await self.get(principal, dataset_id)

    async def write(
        self, principal: Principal, dataset_id: str, mode: WriteMode, upload: Upload
    ) -> Dataset:
        """Publish the upload as the next version: its rows, or the current ones and then its.

        Appending keeps the current columns: the file must have them, by name, and its
        values are converted to their types. The previous version stays readable by the
        queries that started on it.

        Raises:
            NotFound: no such dataset in the caller's customer.
            Forbidden: the caller is neither its owner nor an admin.
            UploadRefused: the file cannot be loaded or does not fit the columns.
            UploadTooLarge, UploadInterrupted: the body (nothing is kept).
        """
        dataset = await self.get(principal, dataset_id, with_versions=False)
        self._check_writer(principal, dataset)
        columns = upload.columns
        if mode is WriteMode.APPEND:
            difference = _schema_difference(
                columns or dataset.current.columns, dataset.current.columns
            )
            if difference:
                raise UploadRefused(f"an append keeps the dataset's columns: {difference}")
            columns = dataset.current.columns
        folder = self.files.folder(principal.customer_id, dataset_id)
        columns, part = await self._load(folder, upload, columns)
        written = [part]
        try:
            for attempt in range(PUBLISH_ATTEMPTS):
                parts: tuple[Part, ...] = (part,)
                if mode is WriteMode.APPEND:
                    parts = (*dataset.current.parts, part)
                    if len(parts) > MAX_PARTS:
                        merged = await self._merge(folder, parts)
                        written.append(merged)
                        parts = (merged,)
                if await self._publish(principal, dataset, columns, parts, mode):
                    written = [p for p in written if p not in parts]  # merged away
                    break
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    raise Conflict("the dataset keeps changing meanwhile; try again")
                dataset = await self.get(principal, dataset_id, with_versions=False)
                if mode is WriteMode.APPEND and dataset.current.columns != columns:
                    raise Conflict("the dataset's columns changed meanwhile; try again")
        finally:
            for leftover in written:
                await asyncio.to_thread(_remove, folder / leftover.file)
        await self._sweep(principal.customer_id, dataset_id)
        log.info("dataset_version_published", dataset_id=dataset_id, mode=mode.value)
        return await self.get(principal, dataset_id)

    async def get(
        self, principal: Principal, dataset_id: str, *, with_versions: bool = True
    ) -> Dataset:
        """One of the caller's customer's datasets.

        Raises:
            NotFound: no such dataset in the caller's customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(datasets).where(
                        datasets.c.id == dataset_id,
                        datasets.c.customer_id == principal.customer_id,
                    )
                )
            ).first()
            if row is None:
                raise NotFound("no such dataset")
            query = select(dataset_versions).where(dataset_versions.c.dataset_id == dataset_id)
            if not with_versions:
                query = query.where(dataset_versions.c.number == row.current_version)
            versions = [
                _version(v)
                for v in await connection.execute(query.order_by(dataset_versions.c.number.desc()))
            ]
        current = next(v for v in versions if v.number == row.current_version)
        return Dataset(
            row.id,
            row.customer_id,
            row.name,
            row.owner_id,
            row.created_at,
            row.updated_at,
            current,
            tuple(versions) if with_versions else (),
        )

    async def list_datasets(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Dataset], str | None]:
        """The caller's customer's datasets with their current versions, oldest first."""
        query = select(datasets).where(datasets.c.customer_id == principal.customer_id)
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, datasets.c.id, limit, cursor)
            current = {(row.id, row.current_version) for row in rows}
            versions = {
                v.dataset_id: _version(v)
                for v in await connection.execute(
                    select(dataset_versions).where(
                        dataset_versions.c.dataset_id.in_([row.id for row in rows])
                    )
                )
                if (v.dataset_id, v.number) in current
            }
        found = [
            Dataset(
                row.id,
                row.customer_id,
                row.name,
                row.owner_id,
                row.created_at,
                row.updated_at,
                versions[row.id],
            )
            for row in rows
        ]
        return found, next_cursor

    async def delete(self, principal: Principal, dataset_id: str) -> None:
        """Delete a dataset; its files go after the grace period (queries may still read them).

        Raises:
            NotFound: no such dataset in the caller's customer.
            Forbidden: the caller is neither its owner nor an admin.
        """
        dataset = await self.get(principal, dataset_id)
        self._check_writer(principal, dataset)
        folder = self.files.folder(principal.customer_id, dataset_id)
        # The grace period of the files starts now, as a replaced version's does.
        await asyncio.to_thread(_touch_all, folder)
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(datasets).where(
                    datasets.c.id == dataset_id, datasets.c.customer_id == principal.customer_id
                )
            )
        log.info("dataset_deleted", dataset_id=dataset_id)

    async def query(
        self, principal: Principal, dataset_id: str, sql: str, *, max_rows: int
    ) -> QueryResult:
        """Run one SELECT on the dataset's current version as `tbl` (SPEC 7).

        Raises:
            NotFound: no such dataset in the caller's customer.
            SqlRefused, SqlTimeout: as `SqlSandbox.query` says.
        """
        async with self.reading(principal, dataset_id) as (_, table):
            return await self.sandbox.query(table, sql, max_rows=max_rows)

    @asynccontextmanager
    async def reading(
        self, principal: Principal, dataset_id: str, *, name: str = "tbl"
    ) -> AsyncIterator[tuple[Dataset, SqlTable]]:
        """The dataset's current version as a sandbox table, kept while the block runs.

        A script or job reads the version it started with for as long as it reads, even
        when a newer one is published meanwhile (`SqlSandbox.cursor` pages through it).

        Raises:
            NotFound: no such dataset in the caller's customer.
        """
        dataset = await self.get(principal, dataset_id, with_versions=False)
        folder = self.files.folder(dataset.customer_id, dataset.id)
        table = SqlTable(tuple(folder / part.file for part in dataset.current.parts), name)
        with self.files.pinned(table.parts):
            yield dataset, table

    async def collect(self, *, now: datetime | None = None) -> int:
        """Remove the files and version rows no reader needs any more (every dataset).

        Returns:
            How many files were removed.
        """
        removed = 0
        for customer_id, dataset_id in await asyncio.to_thread(self.files.folders):
            removed += await self._sweep(customer_id, dataset_id, now=now)
        return removed

    async def _sweep(
        self, customer_id: str, dataset_id: str, *, now: datetime | None = None
    ) -> int:
        moment = now or utcnow()
        cutoff = moment - timedelta(seconds=self.files.grace_s)
        async with self._engine.begin() as connection:
            kept = [
                _version(v)
                for v in await connection.execute(
                    select(dataset_versions).where(
                        dataset_versions.c.dataset_id == dataset_id,
                        dataset_versions.c.customer_id == customer_id,
                    )
                )
            ]
            expired = [v.number for v in kept if v.retired_at is not None and v.retired_at < cutoff]
            if expired:
                await connection.execute(
                    delete(dataset_versions).where(
                        dataset_versions.c.dataset_id == dataset_id,
                        dataset_versions.c.number.in_(expired),
                    )
                )
        live = {p.file for v in kept if v.number not in expired for p in v.parts}
        folder = self.files.folder(customer_id, dataset_id)
        removed = await asyncio.to_thread(
            partial(self.files.sweep, folder, live, now=moment.timestamp())
        )
        if not live:
            await asyncio.to_thread(self.files.remove_folder_if_empty, folder)
        if removed:
            log.info("dataset_files_removed", dataset_id=dataset_id, count=len(removed))
        return len(removed)

    def _check_writer(self, principal: Principal, dataset: Dataset) -> None:
        if dataset.owner_id != principal.user_id and not principal.is_admin_of(dataset.customer_id):
            raise Forbidden("only the dataset's owner and its customer's admins change it")

    async def _check_name_free(self, principal: Principal, name: str) -> None:
        async with self._engine.connect() as connection:
            taken = (
                await connection.execute(
                    select(datasets.c.id).where(
                        datasets.c.customer_id == principal.customer_id, datasets.c.name == name
                    )
                )
            ).first()
        if taken is not None:
            raise Conflict(f"your customer already has a dataset named {name!r}")

    async def _load(
        self, folder: Path, upload: Upload, columns: Sequence[DatasetColumn] | None
    ) -> tuple[tuple[DatasetColumn, ...], Part]:
        """Receive the body and load it into a new part file (renamed only when complete).

        Raises:
            UploadRefused, UploadTooLarge, UploadInterrupted: nothing is kept.
        """
        source = await self.files.receive(
            folder, upload.body, self.max_upload_bytes, upload.declared_length
        )
        final, temporary = self.files.new_part(folder)
        try:
            if source.stat().st_size == 0:
                raise UploadRefused("the file is empty")
            loaded = await asyncio.to_thread(
                load_part, source, upload.file_format, temporary, self._load_limits, columns
            )
            await asyncio.to_thread(os.replace, temporary, final)
        except BaseException:
            await asyncio.to_thread(_remove, temporary)
            raise
        finally:
            await asyncio.to_thread(_remove, source)
        size = final.stat().st_size
        return loaded.columns, Part(final.name, loaded.rows, size)

    async def _merge(self, folder: Path, parts: Sequence[Part]) -> Part:
        final, temporary = self.files.new_part(folder)
        paths = [folder / part.file for part in parts]
        try:
            with self.files.pinned(paths):
                rows = await asyncio.to_thread(merge_parts, paths, temporary, self._load_limits)
            await asyncio.to_thread(os.replace, temporary, final)
        except BaseException:
            await asyncio.to_thread(_remove, temporary)
            raise
        return Part(final.name, rows, final.stat().st_size)

    async def _publish(
        self,
        principal: Principal,
        dataset: Dataset,
        columns: Sequence[DatasetColumn],
        parts: Sequence[Part],
        mode: WriteMode,
    ) -> bool:
        """Make `parts` the next version, unless another one was published meanwhile."""
        seen = dataset.current.number
        now = utcnow()
        try:
            async with self._engine.begin() as connection:
                changed = await connection.execute(
                    update(datasets)
                    .where(
                        datasets.c.id == dataset.id,
                        datasets.c.customer_id == dataset.customer_id,
                        datasets.c.current_version == seen,
                    )
                    .values(current_version=seen + 1, updated_at=now)
                )
                if changed.rowcount != 1:
                    return False
                await connection.execute(
                    update(dataset_versions)
                    .where(
                        dataset_versions.c.dataset_id == dataset.id,
                        dataset_versions.c.number == seen,
                    )
                    .values(retired_at=now)
                )
                await self._insert_version(
                    connection, principal, dataset.id, seen + 1, columns, parts, mode
                )
        except IntegrityError:  # deleted meanwhile, or a version number raced
            return False
        return True

    async def _insert_version(
        self,
        connection: AsyncConnection,
        principal: Principal,
        dataset_id: str,
        number: int,
        columns: Sequence[DatasetColumn],
        parts: Sequence[Part],
        mode: WriteMode,
    ) -> None:
        await connection.execute(
            insert(dataset_versions).values(
                id=new_id(),
                customer_id=principal.customer_id,
                dataset_id=dataset_id,
                number=number,
                columns=[c.document() for c in columns],
                parts=[p.document() for p in parts],
                row_count=sum(p.rows for p in parts),
                size=sum(p.size for p in parts),
                mode=mode.value,
                created_by=principal.user_id,
                created_at=utcnow(),
            )
        )


def _remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


def _touch_all(folder: Path) -> None:
    with suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with suppress(FileNotFoundError):
                os.utime(entry.path)
