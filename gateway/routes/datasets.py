"""Dataset endpoints (SPEC 4.2): streamed uploads, list, get, delete, replace or append, query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Final

from aiohttp import web
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from gateway.auth import principal_of
from gateway.keys import DATASETS
from gateway.problems import ProblemError
from gateway.text import Name
from gateway.wire import ParseModel, json_model, page_parameters, parse_body, validation_errors
from runtime.model import ColumnType
from writeback.datasets.columns import STORAGE_OF, DatasetColumn
from writeback.datasets.load import FileFormat
from writeback.datasets.sandbox import MAX_SQL_CHARS, QueryResult
from writeback.datasets.service import Dataset, Upload, Version, WriteMode

# What one read of the body asks for; the service gathers reads into larger writes.
READ_CHUNK_BYTES: Final = 64 * 1024
MAX_QUERY_ROWS: Final = 10_000
MEDIA_TYPES: Final = ", ".join(kind.value for kind in FileFormat)


class ColumnSpec(ParseModel):
    """A column of a given schema (`columns` query parameter, a JSON array of these)."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    type: ColumnType


class QueryCreate(ParseModel):
    """`POST /api/v1/datasets/{id}/query`."""

    sql: Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS)] = Field(
        description="One SELECT statement on `tbl` (double-quote names with spaces)"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_QUERY_ROWS)] = Field(
        default=MAX_QUERY_ROWS, description="The most rows answered; `truncated` says if more"
    )


class ColumnOut(BaseModel):
    """A column: its name and type."""

    name: str
    type: ColumnType


class VersionOut(BaseModel):
    """A version still kept (the current one, and replaced ones within the grace period)."""

    number: int
    row_count: int
    size: int
    parts: int
    mode: WriteMode
    created_by: str
    created_at: datetime
    retired_at: datetime | None


class DatasetOut(BaseModel):
    """A dataset and its current version's schema, rows and size."""

    id: str
    name: str
    owner_id: str
    columns: list[ColumnOut]
    row_count: int
    size: int
    version: int
    created_at: datetime
    updated_at: datetime
    versions: list[VersionOut] | None = None


class DatasetPage(BaseModel):
    """A page of datasets."""

    items: list[DatasetOut]
    next_cursor: str | None


class QueryOut(BaseModel):
    """A query's columns and rows (arrays in column order)."""

    columns: list[ColumnOut]
    rows: list[list[object]]
    truncated: bool


_COLUMNS: Final = TypeAdapter(list[ColumnSpec])
_NAME: Final = TypeAdapter(Name)


def _version_out(version: Version) -> VersionOut:
    return VersionOut(
        number=version.number,
        row_count=version.row_count,
        size=version.size,
        parts=len(version.parts),
        mode=version.mode,
        created_by=version.created_by,
        created_at=version.created_at,
        retired_at=version.retired_at,
    )


def _dataset_out(dataset: Dataset, *, detail: bool) -> DatasetOut:
    current = dataset.current
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        owner_id=dataset.owner_id,
        columns=[ColumnOut(name=c.name, type=c.type) for c in current.columns],
        row_count=current.row_count,
        size=current.size,
        version=current.number,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
        versions=[_version_out(v) for v in dataset.versions] if detail else None,
    )


def _query_error(name: str, exc: ValidationError) -> ProblemError:
    errors = [{**error, "loc": ["query", name, *error["loc"]]} for error in validation_errors(exc)]
    return ProblemError(
        "validation_failed", f"query parameter {name!r} is not valid", errors=errors
    )


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None:
        raise ProblemError(
            "validation_failed",
            f"query parameter {name!r} is required",
            errors=[{"loc": ["query", name], "msg": "Field required", "type": "missing"}],
        )
    return value


def _upload(request: web.Request) -> Upload:
    """The request's body as an upload, with the schema the `columns` parameter gives.

    Raises:
        ProblemError: `unsupported_media_type` for another type, `validation_failed` for a
            bad `columns` parameter.
    """
    try:
        file_format = FileFormat(request.content_type)
    except ValueError:
        raise ProblemError(
            "unsupported_media_type", f"send the file as one of {MEDIA_TYPES}"
        ) from None
    columns = None
    if (text := request.query.get("columns")) is not None:
        try:
            specs = _COLUMNS.validate_json(text)
        except ValidationError as exc:
            raise _query_error("columns", exc) from None
        if not specs or len({spec.name.lower() for spec in specs}) != len(specs):
            raise ProblemError(
                "validation_failed",
                "columns must name at least one column, each once (names ignore case)",
                errors=[{"loc": ["query", "columns"], "msg": "duplicate", "type": "columns"}],
            )
        columns = tuple(DatasetColumn(s.name, s.type, STORAGE_OF[s.type]) for s in specs)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
            yield chunk

    return Upload(file_format, body(), request.content_length, columns)


async def create_dataset(request: web.Request) -> web.Response:
    """Create a dataset from a streamed file."""
    principal = principal_of(request)
    try:
        name = _NAME.validate_python(_required(request, "name"))
    except ValidationError as exc:
        raise _query_error("name", exc) from None
    upload = _upload(request)
    dataset = await request.app[DATASETS].create(principal, name, upload)
    return json_model(
        _dataset_out(dataset, detail=True),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/datasets/{dataset.id}"},
    )


async def list_datasets(request: web.Request) -> web.Response:
    """The caller's customer's datasets."""
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[DATASETS].list_datasets(
        principal_of(request), limit, cursor
    )
    return json_model(
        DatasetPage(items=[_dataset_out(d, detail=False) for d in items], next_cursor=next_cursor)
    )


async def get_dataset(request: web.Request) -> web.Response:
    """One dataset with its versions."""
    dataset = await request.app[DATASETS].get(principal_of(request), request.match_info["id"])
    return json_model(_dataset_out(dataset, detail=True))


async def delete_dataset(request: web.Request) -> web.Response:
    """Delete a dataset."""
    await request.app[DATASETS].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def put_data(request: web.Request) -> web.Response:
    """Replace the dataset's rows with the file's, or append the file's."""
    principal = principal_of(request)
    try:
        mode = WriteMode(request.query.get("mode", WriteMode.REPLACE.value))
    except ValueError:
        raise ProblemError(
            "validation_failed",
            "mode is replace or append",
            errors=[{"loc": ["query", "mode"], "msg": "replace or append", "type": "enum"}],
        ) from None
    # The service answers 404 or 403 before it reads any of the body.
    dataset = await request.app[DATASETS].write(
        principal, request.match_info["id"], mode, _upload(request)
    )
    return json_model(_dataset_out(dataset, detail=True))


async def query_dataset(request: web.Request) -> web.Response:
    """Run one SELECT on the dataset as `tbl`."""
    principal = principal_of(request)
    body = await parse_body(request, QueryCreate)
    result: QueryResult = await request.app[DATASETS].query(
        principal, request.match_info["id"], body.sql, max_rows=body.limit
    )
    return json_model(
        QueryOut(
            columns=[ColumnOut(name=c.name, type=c.type) for c in result.columns],
            rows=result.rows,
            truncated=result.truncated,
        )
    )


def register(app: web.Application) -> None:
    """Add the dataset routes."""
    app.router.add_post("/api/v1/datasets", create_dataset)
    app.router.add_get("/api/v1/datasets", list_datasets)
    app.router.add_get("/api/v1/datasets/{id}", get_dataset)
    app.router.add_delete("/api/v1/datasets/{id}", delete_dataset)
    app.router.add_put("/api/v1/datasets/{id}/data", put_data)
    app.router.add_post("/api/v1/datasets/{id}/query", query_dataset)
