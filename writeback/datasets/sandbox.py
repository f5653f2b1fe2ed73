"""The SQL sandbox of SPEC 7: one SELECT on one dataset version, on a connection of its own.

Every query gets a fresh in-memory DuckDB connection with extension autoloading and
installing off, Python replacement scans off, no temporary directory (so nothing can be
written, and no "allowed directory" exists), and memory and thread limits. The version's
part files are attached read-only and exposed as one temporary view (`tbl` unless told
otherwise); only then is external access disabled and the configuration locked, in that
order. The statement must be exactly one SELECT, as DuckDB's own parser says; its syntax
tree (`json_serialize_sql`) is then walked so that it may name no table but its own and
its CTEs, no table function but a few pure ones, and none of the functions that read
settings, variables or the catalog (`duckdb_databases()` shows the files' paths). A timer
interrupts the connection at the time limit; DuckDB has no statement timeout of its own.

Queries run in a thread pool of their own, whose size bounds the queries running at once.
`SqlSandbox.query` answers one capped page; `SqlSandbox.cursor` streams pages from one
execution, for callers (writeback scripts) that read millions of rows.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb

from runtime.model import ColumnType
from writeback.datasets.columns import (
    api_type,
    json_rows,
    quote_identifier,
    quote_literal,
    result_type,
)
from writeback.datasets.errors import SqlRefused, SqlTimeout

T = TypeVar("T")

# Table functions that compute rows from their arguments alone.
PURE_TABLE_FUNCTIONS: Final = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree"}
)
# Scalar functions that read the session, the catalog or the clock's patience.
REFUSED_FUNCTIONS: Final = frozenset(
    {
        "current_setting",
        "getvariable",
        "getenv",
        "write_log",
        "pg_sleep",
        "sleep_ms",
        "json_execute_serialized_sql",
    }
)
REFUSED_PREFIXES: Final = ("duckdb_", "pragma_", "read_", "parquet_")
MAX_SQL_CHARS: Final = 100_000


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """How long, how much memory and how many threads one query may use, and how many run."""

    timeout_s: float = 30.0
    memory_mb: int = 512
    threads: int = 2
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class SqlTable:
    """The one table a query may read: a version's part files under one name."""

    parts: tuple[Path, ...]
    name: str = "tbl"


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """A result column: its name and API type."""

    name: str
    type: ColumnType


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One page of a query's rows; `truncated` when more rows were left behind."""

    columns: list[ResultColumn]
    rows: list[list[Any]]
    truncated: bool


def parse_select(sql: str) -> duckdb.Statement:
    """The one SELECT statement of `sql`, parsed by DuckDB.

    Raises:
        SqlRefused: the text does not parse, holds no or several statements, or another kind.
    """
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"the query is longer than {MAX_SQL_CHARS} characters")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"the query does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement, not {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise SqlRefused(f"only a SELECT runs here, not {statement.type.name}")
    return statement


def check_tree(tree: Mapping[str, Any], table: str) -> None:
    """Refuse a parsed SELECT that names a table, table function or function it may not.

    `tree` is `json_serialize_sql`'s answer. CTE names count only inside the node that
    defines them, as DuckDB binds them, so a CTE cannot lend its name to a catalog view
    named outside it.

    Raises:
        SqlRefused: naming the first table or function refused.
    """
    if tree.get("error"):
        raise SqlRefused(f"the query cannot be checked: {tree.get('error_message', '')}")
    _walk(tree, frozenset({table.lower()}))


def _walk(node: object, tables: frozenset[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, tables)
        return
    if not isinstance(node, dict):
        return
    ctes = node.get("cte_map")
    if isinstance(ctes, dict):
        names = {str(entry.get("key", "")).lower() for entry in ctes.get("map", [])}
        tables = tables | names
    _check_node(node, tables)
    for value in node.values():
        _walk(value, tables)


def _check_node(node: Mapping[str, Any], tables: frozenset[str]) -> None:
    kind = node.get("type")
    if kind == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        qualified = node.get("schema_name") or node.get("catalog_name")
        if qualified or name.lower() not in tables:
            raise SqlRefused(f"the query may read only its table and CTEs, not {name!r}")
    elif kind == "TABLE_FUNCTION":
        function = node.get("function", {})
        name = str(function.get("function_name", "")) if isinstance(function, dict) else ""
        if name.lower() not in PURE_TABLE_FUNCTIONS:
            raise SqlRefused(f"the table function {name!r} is not available here")
    elif kind == "SHOW_REF":
        raise SqlRefused("DESCRIBE and SUMMARIZE are not available here")
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in REFUSED_FUNCTIONS or name.startswith(REFUSED_PREFIXES):
            raise SqlRefused(f"the function {name!r} is not available here")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _scrubbed(exc: BaseException, table: SqlTable) -> str:
    """DuckDB's first message line, without the folders of the table's files."""
    message = _first_line(exc)
    for folder in {str(part.parent) for part in table.parts}:
        message = message.replace(folder, "<dataset>")
    return message


def open_connection(table: SqlTable, limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    """A fresh locked connection that sees `table` alone (the order SPEC 7 gives).

    Raises:
        ValueError: the table has no part files.
    """
    if not table.parts:
        raise ValueError("a table needs at least one part file")
    connection = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "python_enable_replacements": False,
            "threads": limits.threads,
            "memory_limit": f"{limits.memory_mb}MB",
            # No temporary directory: nothing spills, and DuckDB allows no directory of its
            # own once external access is off (it would allow the temporary one).
            "temp_directory": "",
        },
    )
    try:
        selects = []
        for index, part in enumerate(table.parts):
            connection.execute(f"ATTACH {quote_literal(str(part))} AS p{index} (READ_ONLY)")
            selects.append(f"SELECT * FROM p{index}.main.data")  # noqa: S608 (our alias)
        view = quote_identifier(table.name)
        connection.execute(f"CREATE TEMP VIEW {view} AS {' UNION ALL '.join(selects)}")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def _deadline(connection: duckdb.DuckDBPyConnection, timeout_s: float) -> Iterator[None]:
    """Interrupt whatever `connection` runs once `timeout_s` have passed."""
    timer = threading.Timer(timeout_s, connection.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class SyncCursor:
    """One query on its own sandboxed connection, read in pages (used from one thread at a time)."""

    def __init__(
        self,
        table: SqlTable,
        sql: str,
        limits: SandboxLimits,
        parameters: Sequence[object] | None = None,
    ) -> None:
        """Open the connection, check the statement and start it.

        Raises:
            SqlRefused, SqlTimeout: as `fetch` does, or a statement the sandbox refuses.
        """
        statement = parse_select(sql)
        self._table = table
        self._limits = limits
        self._connection = open_connection(table, limits)
        try:
            with self._errors():
                found = self._connection.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
                check_tree(json.loads(found[0] if found else '{"error": true}'), table.name)
                with _deadline(self._connection, limits.timeout_s):
                    self._connection.execute(statement, parameters)
            description = self._connection.description or []
            names = [str(column[0]) for column in description]
            duck_types = [str(column[1]) for column in description]
        except BaseException:
            self._connection.close()
            raise
        self.columns = [
            ResultColumn(name, result_type(kind))
            for name, kind in zip(names, duck_types, strict=True)
        ]
        self._exact = [api_type(kind) is not None for kind in duck_types]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except duckdb.InterruptException:
            raise SqlTimeout(
                f"the query ran past the {self._limits.timeout_s:g} s limit and was stopped"
            ) from None
        except duckdb.OutOfMemoryException:
            raise SqlRefused(
                f"the query needs more than the {self._limits.memory_mb} MB it may use"
            ) from None
        except duckdb.Error as exc:
            raise SqlRefused(_scrubbed(exc, self._table)) from None

    def fetch(self, limit: int) -> list[list[Any]]:
        """Up to `limit` further rows as JSON values (none at the end), within the time limit.

        Raises:
            SqlTimeout: the time limit passed; SqlRefused: the query failed meanwhile.
        """
        with self._errors(), _deadline(self._connection, self._limits.timeout_s):
            rows = self._connection.fetchmany(limit)
        return json_rows([c.type for c in self.columns], self._exact, rows)

    def interrupt(self) -> None:
        """Stop whatever runs now (thread-safe)."""
        self._connection.interrupt()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def run_query(
    table: SqlTable,
    sql: str,
    limits: SandboxLimits,
    max_rows: int,
    parameters: Sequence[object] | None = None,
) -> QueryResult:
    """Run `sql` and answer its first `max_rows` rows (blocking; see `SqlSandbox.query`).

    Raises:
        SqlRefused, SqlTimeout: as `SyncCursor` says.
    """
    cursor = SyncCursor(table, sql, limits, parameters)
    try:
        rows = cursor.fetch(max_rows + 1)
    finally:
        cursor.close()
    return QueryResult(cursor.columns, rows[:max_rows], truncated=len(rows) > max_rows)


class QueryCursor:
    """An open query whose rows are read in pages, each within the time limit."""

    def __init__(self, sandbox: SqlSandbox, cursor: SyncCursor) -> None:
        self._sandbox = sandbox
        self._cursor = cursor
        self.columns = cursor.columns

    async def fetch(self, limit: int) -> list[list[Any]]:
        """The next page of at most `limit` rows; an empty page at the end.

        Raises:
            SqlTimeout, SqlRefused: as `SyncCursor.fetch` says.
        """
        return await self._sandbox.run(partial(self._cursor.fetch, limit))


class SqlSandbox:
    """Runs sandboxed queries in a bounded pool of threads, never on the event loop."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._executor = ThreadPoolExecutor(self.limits.concurrency, thread_name_prefix="sql")

    async def run(self, work: partial[T]) -> T:
        """Run blocking DuckDB work on the sandbox's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def query(
        self,
        table: SqlTable,
        sql: str,
        *,
        max_rows: int,
        parameters: Sequence[object] | None = None,
    ) -> QueryResult:
        """The first `max_rows` rows of `sql` on `table`.

        Raises:
            SqlRefused: not exactly one allowed SELECT, or DuckDB refused it (its message).
            SqlTimeout: it ran past the time limit.
        """
        return await self.run(partial(run_query, table, sql, self.limits, max_rows, parameters))

    @asynccontextmanager
    async def cursor(
        self, table: SqlTable, sql: str, parameters: Sequence[object] | None = None
    ) -> AsyncIterator[QueryCursor]:
        """Start `sql` on `table` and read its rows page by page; closed on leaving.

        Raises:
            SqlRefused, SqlTimeout: as `query` says.
        """
        cursor = await self.run(partial(SyncCursor, table, sql, self.limits, parameters))
        try:
            yield QueryCursor(self, cursor)
        finally:
            cursor.interrupt()  # a page still running (a cancelled caller) stops at once
            await asyncio.shield(self.run(partial(cursor.close)))

    def close(self) -> None:
        """Stop taking queries; those running end at their time limit."""
        self._executor.shutdown(wait=False, cancel_futures=True)
