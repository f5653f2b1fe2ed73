"""The host services a run may use: the small typed interface the gateway implements.

Workers never do I/O themselves. Every `httprequest.*`, state or dataset call of a script
arrives at the pool as a host call; the pool hands it to these services and sends the answer
back. New capabilities (datasets, `sql`, `aws`, resources) add a service here and an `op`
in `runtime.dispatch`, without changing the wire protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from runtime.model import Column, HttpTraceEntry, JsonValue


class HostCallError(Exception):
    """A host call refused or failed; the script sees a normal JS `Error`.

    `code` is stable (`egress_refused`, `upstream_timeout`, `response_too_large`, ...);
    `message` must be safe to show to the script author (no secrets, no internals).
    """

    def __init__(self, code: str, message: str, *, trace: Sequence[HttpTraceEntry] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trace = list(trace)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request a script asked for, as `httprequest` built it."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The final response after redirects, with one trace entry per hop."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: str
    trace: list[HttpTraceEntry] = field(default_factory=list)


class HttpService(Protocol):
    """Sends a script's request under the run's egress policy."""

    async def send(self, request: HttpRequest, *, max_body_bytes: int) -> HttpResponse:
        """Send `request`, following redirects.

        Raises:
            HostCallError: the request was refused or failed (carries the trace so far).
        """


class StateStore(Protocol):
    """`DOMO.getState`/`setState`, persisted per connector and account."""

    async def get(self, key: str) -> JsonValue:
        """Return the stored value, or None."""

    async def set(self, key: str, value: JsonValue) -> None:
        """Store `value` under `key`."""


class DatasetReader(Protocol):
    """`DOMO.listDatasets/getDataset/queryData`: the datasets a run may read (decision 0023).

    The first use of a dataset in a run pins its current version for the rest of the run.
    Errors are `HostCallError`s with the sandbox's code and message (`sql_refused`,
    `sql_timeout`, `dataset_not_found`).
    """

    async def list(self) -> list[str]:
        """The ids of the datasets the run may read."""

    async def describe(self, dataset_id: str) -> dict[str, JsonValue]:
        """`{id, name, rowCount, columns: [{name, type}]}` of one dataset.

        Raises:
            HostCallError: no such dataset for this run.
        """

    async def query(
        self, dataset_id: str, sql: str, offset: int, limit: int | None
    ) -> dict[str, JsonValue]:
        """`{columns: [{name, type}], rows, more}`: rows `offset` to `offset + limit` of `sql`
        on the dataset as `tbl` (every row when `limit` is None, up to a cap).

        Raises:
            HostCallError: no such dataset, or the sandbox refused or stopped the query.
        """


class SqlStore(Protocol):
    """`sql.*`: the connector's persistent tables (decision 0023)."""

    async def call(self, op: str, args: dict[str, JsonValue]) -> JsonValue:
        """Run one `sql.<op>` call.

        Raises:
            HostCallError: the call is refused (its message says why).
        """


@dataclass(frozen=True, slots=True)
class ObjectRequest:
    """One `aws` client call: who signs it, where it goes, and for `put` the content."""

    method: str
    region: str
    access_key: str
    secret_key: str
    path: str
    name: str
    body: str | None = None
    endpoint: str | None = None


class ObjectStore(Protocol):
    """`aws.createClient/put/get`: objects in S3 or an S3-compatible store, signed by the host."""

    async def send(self, request: ObjectRequest, *, max_body_bytes: int) -> HttpResponse:
        """Sign and send `request` through the run's egress session; a 2xx answer.

        Raises:
            HostCallError: refused by the egress policy, or the store answered an error
                (carries the trace so far).
        """


class RowSink(Protocol):
    """Receives a run's datagrid rows in chunks while the run goes on (jobs stream them).

    Cells are raw: a column's final type is known only at the end (`magicParse*` infers it
    over every row), so the sink converts them in `finish` (see `runtime.grid`).
    """

    async def write(self, columns: Sequence[str], rows: list[list[JsonValue]]) -> None:
        """Take a chunk; rows shorter than `columns` are padded with nulls by the sink."""

    async def finish(self, columns: Sequence[Column]) -> None:
        """The run succeeded: these are the final columns and types."""

    async def abort(self) -> None:
        """The run failed: drop everything written (nothing partial may be kept)."""


@dataclass(frozen=True, slots=True)
class Host:
    """The services one run may use; a missing one makes its calls fail clearly."""

    http: HttpService | None = None
    state: StateStore | None = None
    rows: RowSink | None = None
    datasets: DatasetReader | None = None
    sql: SqlStore | None = None
    aws: ObjectStore | None = None
