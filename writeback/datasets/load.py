"""Loading an uploaded file into a part file: DuckDB reads it, types it and writes a table.

Blocking code, run in a thread by the service. The file was streamed to disk first, so
DuckDB reads it from there in its own bounded chunks and the part is written as it goes:
memory stays flat in the file's size. A part file is a DuckDB database with one table,
`data`, whose columns have the storage types of `writeback.datasets.columns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import duckdb

from writeback.datasets.columns import (
    DatasetColumn,
    quote_identifier,
    quote_literal,
    stored_column,
)
from writeback.datasets.errors import UploadRefused

MAX_COLUMNS: Final = 1000


class FileFormat(StrEnum):
    """The upload formats, by media type (SPEC 4.2)."""

    CSV = "text/csv"
    JSON = "application/json"
    NDJSON = "application/x-ndjson"
    PARQUET = "application/vnd.apache.parquet"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """What a load may use."""

    memory_mb: int = 1024
    threads: int = 2


@dataclass(frozen=True, slots=True)
class LoadedPart:
    """A part file written: its columns and row count."""

    columns: tuple[DatasetColumn, ...]
    rows: int


def _reader(source: Path, file_format: FileFormat, options: str = "") -> str:
    """The table function that reads `source`, with further CSV `options` (`, name = value`)."""
    path = quote_literal(str(source))
    if file_format is FileFormat.CSV:
        # RFC 4180: commas, double quotes, the first line is the header; the sniffer finds
        # the types (a leading zero keeps a column VARCHAR). Every line must have as many
        # fields as the header: a ragged line is refused, not padded.
        return (
            f"read_csv({path}, header = true, skip = 0, delim = ',', quote = '\"',"
            f" strict_mode = true, null_padding = false{options})"
        )
    if file_format is FileFormat.JSON:
        return f"read_json({path}, format = 'array')"
    if file_format is FileFormat.NDJSON:
        return f"read_json({path}, format = 'newline_delimited')"
    return f"read_parquet({path})"


def _connect(target: Path, limits: LoadLimits) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(
        str(target),
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": limits.threads,
            "memory_limit": f"{limits.memory_mb}MB",
            # Spill beside the part (the dataset folder), never in the working directory.
            "temp_directory": str(target.parent / (target.name + ".spill")),
        },
    )
    # Timestamps with a zone are stored as UTC wall time (ICU is built into the package).
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _refusal(exc: duckdb.Error, source: Path) -> UploadRefused:
    """DuckDB's words about a bad file, without our paths (the lines up to the first blank)."""
    text = str(exc).replace(str(source), "the upload").strip()
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("LINE "):
            break
        lines.append(line.strip())
    message = " ".join(lines)[:600] or type(exc).__name__
    return UploadRefused(f"the file could not be loaded: {message}")


def _described(
    connection: duckdb.DuckDBPyConnection, source: Path, reader: str
) -> list[tuple[str, str]]:
    try:
        # Every name and path in `reader` is quoted by `quote_literal`.
        found = connection.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()  # noqa: S608
    except duckdb.Error as exc:
        raise _refusal(exc, source) from None
    return [(str(row[0]), str(row[1])) for row in found]


def _check_names(found: Sequence[str], wanted: Sequence[DatasetColumn]) -> None:
    """The file's columns must be the dataset's, by name (in any order).

    Raises:
        UploadRefused: naming the missing and the unexpected columns.
    """
    names = {column.name for column in wanted}
    missing = [column.name for column in wanted if column.name not in set(found)]
    unexpected = [name for name in found if name not in names]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(name) for name in missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(repr(name) for name in unexpected))
        raise UploadRefused(f"the file's columns do not match the dataset's: {'; '.join(parts)}")


def _check_shape(found: Sequence[str]) -> None:
    if not found:
        raise UploadRefused("the file has no columns")
    if len(found) > MAX_COLUMNS:
        raise UploadRefused(f"the file has {len(found)} columns; at most {MAX_COLUMNS} are kept")
    folded: dict[str, str] = {}
    for name in found:
        if name.lower() in folded:
            raise UploadRefused(
                f"columns {folded[name.lower()]!r} and {name!r} differ only in case"
            )
        folded[name.lower()] = name


def load_part(
    source: Path,
    file_format: FileFormat,
    target: Path,
    limits: LoadLimits,
    columns: Sequence[DatasetColumn] | None = None,
) -> LoadedPart:
    """Load `source` into a new part file at `target`, typed as inferred or as `columns`.

    With `columns` the file must have exactly those columns (by name); each value is
    converted to the column's storage type, and a value that does not convert is refused.
    The caller removes `target` when this raises.

    Raises:
        UploadRefused: DuckDB cannot read the file (its message names the line or column
            where it can), or its columns do not match `columns`.
    """
    reader = _reader(source, file_format)
    connection = _connect(target, limits)
    try:
        if columns is not None and file_format is FileFormat.CSV:
            # Read the header as text, then give the sniffer the types by name: a value that
            # does not convert is then reported with its line.
            text = _reader(source, file_format, ", all_varchar = true")
            found = _described(connection, source, text)
            _check_shape([name for name, _ in found])
            _check_names([name for name, _ in found], columns)
            types = ", ".join(
                f"{quote_literal(c.name)}: {quote_literal(c.storage)}" for c in columns
            )
            reader = _reader(source, file_format, f", types = {{{types}}}")
        found = _described(connection, source, reader)
        _check_shape([name for name, _ in found])
        if columns is None:
            stored = [stored_column(name, kind) for name, kind in found]
        else:
            _check_names([name for name, _ in found], columns)
            stored = [(column, f"CAST({{}} AS {column.storage})") for column in columns]
        select = ", ".join(
            f"{sql.format(quote_identifier(column.name))} AS {quote_identifier(column.name)}"
            for column, sql in stored
        )
        try:
            # Names quoted by `quote_identifier`, types from our own table, paths quoted.
            connection.execute(f"CREATE TABLE data AS SELECT {select} FROM {reader}")  # noqa: S608
            counted = connection.execute("SELECT count(*) FROM data").fetchone()
        except duckdb.Error as exc:
            raise _refusal(exc, source) from None
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return LoadedPart(tuple(column for column, _ in stored), int(counted[0]) if counted else 0)


def merge_parts(parts: Sequence[Path], target: Path, limits: LoadLimits) -> int:
    """Write the rows of `parts`, in order, into one new part file at `target`.

    Returns:
        The number of rows written.
    """
    connection = _connect(target, limits)
    try:
        selects = []
        for index, part in enumerate(parts):
            connection.execute(f"ATTACH {quote_literal(str(part))} AS p{index} (READ_ONLY)")
            selects.append(f"SELECT * FROM p{index}.main.data")  # noqa: S608 (our alias)
        connection.execute(f"CREATE TABLE data AS {' UNION ALL '.join(selects)}")
        counted = connection.execute("SELECT count(*) FROM data").fetchone()
        for index in range(len(parts)):
            connection.execute(f"DETACH p{index}")
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return int(counted[0]) if counted else 0
