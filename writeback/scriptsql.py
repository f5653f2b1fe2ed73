"""`sql.*` (SPEC 3.2): a connector's own small tables, kept between its runs (decision 0023).

A writeback or pull connector's script keeps what it needs between runs (ids it already
sent, a mapping of keys) in tables it declares: `sql.createTable(name, columns)`, then
`insert`, `select`, `update`, `delete` with `where` objects of column values, and `export`
(`{columns, rows}`, as `DOMO.queryData` answers). The store belongs to the customer and
the connector (every account of the connector shares it), lives in the metadata store
(so every replica sees it), and is capped: 64 tables of 100 columns, 16 MiB of rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.ids import new_id
from gateway.store.tables import utcnow
from runtime.host import HostCallError
from runtime.model import JsonValue, MiB
from writeback.tables import SQL_TABLE_NAME_LENGTH, connector_sql_rows, connector_sql_tables

MAX_TABLES: Final = 64
MAX_COLUMNS: Final = 100
MAX_BYTES: Final = 16 * MiB
NAME: Final = re.compile(rf"^[A-Za-z_][A-Za-z0-9_ ]{{0,{SQL_TABLE_NAME_LENGTH - 1}}}$")
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


def _is_long(v: object) -> bool:
    return type(v) is int


def _is_double(v: object) -> bool:
    return type(v) in (int, float)


TYPES: Final[dict[str, Callable[[object], bool]]] = {
    "STRING": lambda v: isinstance(v, str),
    "LONG": _is_long,
    "DOUBLE": _is_double,
    "BOOLEAN": lambda v: isinstance(v, bool),
    "DATE": lambda v: isinstance(v, str) and bool(_DATE.match(v)),
    "DATETIME": lambda v: isinstance(v, str) and bool(_DATETIME.match(v)),
}


def _refused(message: str) -> HostCallError:
    return HostCallError("sql_refused", message)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise _refused(
            f"{what} {value!r} is not a name (letters, digits, _ and spaces, "
            f"at most {SQL_TABLE_NAME_LENGTH} characters)"
        )
    return value


def _columns(value: object) -> list[dict[str, str]]:
    """`[{name, type}]`, `{name: type}` or `[name, ...]` (STRING) as `[{name, type}]`."""
    if isinstance(value, dict):
        value = [{"name": k, "type": v} for k, v in value.items()]
    if not isinstance(value, list) or not 0 < len(value) <= MAX_COLUMNS:
        raise _refused(f"sql.createTable takes 1 to {MAX_COLUMNS} columns")
    columns: list[dict[str, str]] = []
    for item in value:
        spec = {"name": item, "type": "STRING"} if isinstance(item, str) else item
        if not isinstance(spec, dict):
            raise _refused("a column is a name or {name, type}")
        kind = str(spec.get("type", "STRING")).upper()
        if kind not in TYPES:
            raise _refused(f"the column type {kind!r} is none of {', '.join(TYPES)}")
        columns.append({"name": _name(spec.get("name"), "the column"), "type": kind})
    if len({c["name"] for c in columns}) != len(columns):
        raise _refused("the column names repeat")
    return columns


class _Table:
    """A declared table: checks rows and `where` objects against its columns."""

    def __init__(self, table_id: str, name: str, columns: Sequence[Mapping[str, str]]) -> None:
        self.id = table_id
        self.name = name
        self.types = {c["name"]: c["type"] for c in columns}

    def values(self, value: object, *, complete: bool) -> dict[str, JsonValue]:
        if not isinstance(value, dict):
            raise _refused(f"a row of {self.name!r} is an object of column values")
        for column, cell in value.items():
            kind = self.types.get(column)
            if kind is None:
                raise _refused(f"{self.name!r} has no column {column!r}")
            if cell is not None and not TYPES[kind](cell):
                raise _refused(f"{self.name!r}.{column} is {kind}, not {json.dumps(cell)[:60]}")
        if complete:
            return {column: value.get(column) for column in self.types}
        return dict(value)

    def matches(self, where: dict[str, JsonValue]) -> Callable[[Mapping[str, JsonValue]], bool]:
        return lambda row: all(row.get(k) == v for k, v in where.items())


class ConnectorSql:
    """Hands each run the `sql` store of its customer and connector."""

    def __init__(self, engine: AsyncEngine, *, max_bytes: int = MAX_BYTES) -> None:
        self._engine = engine
        self._max_bytes = max_bytes

    def for_run(self, customer_id: str, connector_id: str) -> RunSql:
        """The store a run of `customer_id` with `connector_id` reaches."""
        return RunSql(self._engine, customer_id, connector_id, self._max_bytes)


class RunSql:
    """One run's `SqlStore`: the tables of its customer and connector, nothing else."""

    def __init__(
        self, engine: AsyncEngine, customer_id: str, connector_id: str, max_bytes: int
    ) -> None:
        self._engine = engine
        self._customer_id = customer_id
        self._connector_id = connector_id
        self._max_bytes = max_bytes

    async def call(self, op: str, args: dict[str, JsonValue]) -> JsonValue:
        """Run `sql.<op>`; every call is one transaction.

        Raises:
            HostCallError: `sql_refused` naming what is wrong, `sql_too_large` past the cap.
        """
        handler = {
            "createTable": self._create,
            "insert": self._insert,
            "select": self._select,
            "update": self._update,
            "delete": self._delete,
            "export": self._export,
        }.get(op)
        if handler is None:
            raise HostCallError("unknown_call", f"sql.{op} does not exist")
        name = _name(args.get("table"), "the table")
        async with self._engine.begin() as connection:
            return await handler(connection, name, args)

    async def _create(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        columns = _columns(args.get("columns"))
        found = await self._find(connection, name)
        if found is not None:
            if list(found.types.items()) != [(c["name"], c["type"]) for c in columns]:
                raise _refused(f"the table {name!r} exists with other columns")
            return False
        count = await connection.scalar(
            select(func.count()).select_from(connector_sql_tables).where(*self._scope())
        )
        if int(count or 0) >= MAX_TABLES:
            raise _refused(f"a connector keeps at most {MAX_TABLES} tables")
        await connection.execute(
            insert(connector_sql_tables).values(
                id=new_id(),
                customer_id=self._customer_id,
                connector_id=self._connector_id,
                name=name,
                columns=columns,
                created_at=utcnow(),
            )
        )
        return True

    async def _insert(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        table = await self._table(connection, name)
        given = args.get("rows")
        given = given if isinstance(given, list) else [given]
        rows = [table.values(row, complete=True) for row in given]
        sized = [(row, _size(row)) for row in rows]
        await self._check_cap(connection, sum(size for _, size in sized))
        if sized:
            await connection.execute(
                insert(connector_sql_rows),
                [
                    {"id": new_id(), "customer_id": self._customer_id, "table_id": table.id,
                     "data": row, "size": size}
                    for row, size in sized
                ],
            )  # fmt: skip
        return len(sized)

    async def _select(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        table = await self._table(connection, name)
        return [data for _, data in await self._rows(connection, table, args.get("where"))]

    async def _update(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        table = await self._table(connection, name)
        values = table.values(args.get("values"), complete=False)
        matched = await self._rows(connection, table, args.get("where"))
        changed = [(row_id, {**data, **values}) for row_id, data in matched]
        growth = sum(_size(data) for _, data in changed) - sum(_size(d) for _, d in matched)
        await self._check_cap(connection, growth)
        for row_id, data in changed:
            await connection.execute(
                update(connector_sql_rows)
                .where(connector_sql_rows.c.id == row_id)
                .values(data=data, size=_size(data))
            )
        return len(changed)

    async def _delete(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        table = await self._table(connection, name)
        matched = [row_id for row_id, _ in await self._rows(connection, table, args.get("where"))]
        for start in range(0, len(matched), 500):
            await connection.execute(
                delete(connector_sql_rows).where(
                    connector_sql_rows.c.id.in_(matched[start : start + 500])
                )
            )
        return len(matched)

    async def _export(self, connection: AsyncConnection, name: str, args: Any) -> JsonValue:
        table = await self._table(connection, name)
        names = list(table.types)
        rows = await self._rows(connection, table, None)
        return {"columns": names, "rows": [[data.get(n) for n in names] for _, data in rows]}

    def _scope(self) -> tuple[Any, ...]:
        return (
            connector_sql_tables.c.customer_id == self._customer_id,
            connector_sql_tables.c.connector_id == self._connector_id,
        )

    async def _find(self, connection: AsyncConnection, name: str) -> _Table | None:
        row = (
            await connection.execute(
                select(connector_sql_tables).where(
                    *self._scope(), connector_sql_tables.c.name == name
                )
            )
        ).first()
        return None if row is None else _Table(row.id, row.name, row.columns)

    async def _table(self, connection: AsyncConnection, name: str) -> _Table:
        found = await self._find(connection, name)
        if found is None:
            raise _refused(f"no table {name!r}: create it with sql.createTable first")
        return found

    async def _rows(
        self, connection: AsyncConnection, table: _Table, where: object
    ) -> list[tuple[str, dict[str, JsonValue]]]:
        wanted = table.matches(table.values(where or {}, complete=False))
        found = await connection.execute(
            select(connector_sql_rows.c.id, connector_sql_rows.c.data)
            .where(
                connector_sql_rows.c.customer_id == self._customer_id,
                connector_sql_rows.c.table_id == table.id,
            )
            .order_by(connector_sql_rows.c.id)
        )
        return [(row.id, row.data) for row in found if wanted(row.data)]

    async def _check_cap(self, connection: AsyncConnection, growth: int) -> None:
        used = await connection.scalar(
            select(func.coalesce(func.sum(connector_sql_rows.c.size), 0))
            .select_from(
                connector_sql_rows.join(
                    connector_sql_tables,
                    connector_sql_rows.c.table_id == connector_sql_tables.c.id,
                )
            )
            .where(*self._scope())
        )
        total = int(used or 0) + growth
        if total > self._max_bytes:
            raise HostCallError(
                "sql_too_large",
                f"the connector's sql tables would take {total} bytes, more than the "
                f"{self._max_bytes} allowed; nothing was written",
            )


def _size(row: Mapping[str, JsonValue]) -> int:
    return len(json.dumps(row, separators=(",", ":")).encode())
