"""Dataset columns: the seven API types (SPEC 4.3), their DuckDB storage, and JSON values."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from runtime.model import ColumnType

# What a given column type is stored as. DECIMAL without a precision keeps 38 digits, 9 of
# them after the point; an inferred DECIMAL keeps the precision the file had.
STORAGE_OF: Final[dict[ColumnType, str]] = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.LONG: "BIGINT",
    ColumnType.DOUBLE: "DOUBLE",
    ColumnType.DECIMAL: "DECIMAL(38,9)",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}

_LONG: Final = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
)
# Integers wider than 64 bits: exact as DECIMAL(38,0) (a LONG would overflow).
_WIDE: Final = frozenset({"UBIGINT", "HUGEINT", "UHUGEINT"})
_DATETIME: Final = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
)
_DECIMAL: Final = re.compile(r"DECIMAL\(\d+,\d+\)")
_NESTED: Final = re.compile(r".*(\[\d*\]|^STRUCT\(.*|^MAP\(.*|^UNION\(.*|^JSON)$")


@dataclass(frozen=True, slots=True)
class DatasetColumn:
    """A stored column: its name, its API type and the exact DuckDB type of the part files."""

    name: str
    type: ColumnType
    storage: str

    def document(self) -> dict[str, str]:
        """The column as the metadata store keeps it."""
        return {"name": self.name, "type": self.type.value, "storage": self.storage}

    @classmethod
    def from_document(cls, document: dict[str, str]) -> DatasetColumn:
        """A column read back from the metadata store."""
        return cls(document["name"], ColumnType(document["type"]), document["storage"])


def api_type(duckdb_type: str) -> ColumnType | None:
    """The API type of a DuckDB type, or None when it is none of the seven."""
    if duckdb_type == "VARCHAR":
        return ColumnType.STRING
    if duckdb_type in _LONG:
        return ColumnType.LONG
    if duckdb_type in ("DOUBLE", "FLOAT"):
        return ColumnType.DOUBLE
    if _DECIMAL.fullmatch(duckdb_type):
        return ColumnType.DECIMAL
    if duckdb_type == "DATE":
        return ColumnType.DATE
    if duckdb_type in _DATETIME:
        return ColumnType.DATETIME
    if duckdb_type == "BOOLEAN":
        return ColumnType.BOOLEAN
    return None


def stored_column(name: str, duckdb_type: str) -> tuple[DatasetColumn, str]:
    """How a loaded column of `duckdb_type` is stored, and the SQL that converts it.

    The SQL uses `{}` for the quoted source column. Integers become BIGINT, wider ones
    DECIMAL(38,0), every timestamp a TIMESTAMP in UTC; lists, structs and maps become JSON
    text (as `magicParseJSON` turns arrays into JSON strings), anything else its text.
    """
    kind = api_type(duckdb_type)
    if duckdb_type in _WIDE:
        return DatasetColumn(name, ColumnType.DECIMAL, "DECIMAL(38,0)"), "CAST({} AS DECIMAL(38,0))"
    if kind is ColumnType.DECIMAL:
        return DatasetColumn(name, kind, duckdb_type), "{}"
    if kind is not None:
        storage = STORAGE_OF[kind]
        return DatasetColumn(name, kind, storage), f"CAST({{}} AS {storage})"
    column = DatasetColumn(name, ColumnType.STRING, "VARCHAR")
    if _NESTED.match(duckdb_type):
        return column, "CAST(to_json({}) AS VARCHAR)"
    return column, "CAST({} AS VARCHAR)"


def quote_identifier(name: str) -> str:
    """`name` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """`text` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _float(value: float) -> float | None:
    # JSON has no NaN or infinity.
    return value if math.isfinite(value) else None


def _decimal(value: Decimal) -> float | None:
    return _float(float(value))


def _datetime(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat()


def _text(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (date, time, timedelta)):
        return value.isoformat() if not isinstance(value, timedelta) else str(value)
    return str(value)


Converter = Callable[[Any], Any]

_CONVERTERS: Final[dict[ColumnType, Converter | None]] = {
    ColumnType.STRING: None,
    ColumnType.LONG: None,
    ColumnType.BOOLEAN: None,
    ColumnType.DOUBLE: _float,
    ColumnType.DECIMAL: _decimal,
    ColumnType.DATE: date.isoformat,
    ColumnType.DATETIME: _datetime,
}


def result_type(duckdb_type: str) -> ColumnType:
    """The API type of a query's result column (STRING for every type that is not one)."""
    return api_type(duckdb_type) or ColumnType.STRING


def json_rows(
    types: Sequence[ColumnType], exact: Sequence[bool], rows: Sequence[tuple[Any, ...]]
) -> list[list[Any]]:
    """Rows of DuckDB values as JSON values: DATE `yyyy-MM-dd`, DATETIME ISO without zone.

    `exact[i]` says whether column i's DuckDB type is the API type itself; other columns
    (UUID, BLOB, lists ...) are shown as STRING, their values as text (JSON for nested ones).
    """
    converters: list[tuple[int, Converter]] = []
    for index, (kind, native) in enumerate(zip(types, exact, strict=True)):
        converter = _CONVERTERS[kind] if native else _text
        if converter is not None:
            converters.append((index, converter))
    if not converters:
        return [list(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for index, converter in converters:
            value = values[index]
            if value is not None:
                values[index] = converter(value)
        converted.append(values)
    return converted
