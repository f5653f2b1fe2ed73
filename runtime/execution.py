"""One run on one worker: serve its host calls, collect logs and rows, enforce its limits.

The worker is not trusted: a script may have subverted the prelude, and a QuickJS bug could
hand the script the worker itself. So the run accepts only the messages its state allows
(`log`, `rows` and `call` while it runs, then one `result`; the pool takes nothing but
`ready` after it) and enforces the log cap, the row cap and the result-size cap itself, on
the final `result` too. Anything else ends the run as `worker_crashed` and the worker is
killed (docs/decisions/0009-worker-frames.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from runtime import protocol
from runtime.frames import LOG_TRUNCATED
from runtime.grid import finalize_rows
from runtime.host import Host, HostCallError, HttpRequest, ObjectRequest
from runtime.model import (
    AuthOutcome,
    Column,
    Discovery,
    ErrorCode,
    HttpTraceEntry,
    JsonValue,
    RunError,
    RunRequest,
    RunResult,
    RunStatus,
)
from runtime.redact import Redactor

if TYPE_CHECKING:
    from runtime.pool import WorkerProcess

CHUNK_ROWS: Final = 10_000
RESULT_BYTES: Final = 64 * 1024 * 1024
"""The most row data a run without a row sink may make the gateway hold; also the largest
final `result` frame of any run."""
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_FINAL_STATUSES: Final = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.ERROR})


class _EndRun(Exception):
    """The gateway ends the run itself (a cap was reached); the worker is killed."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = RunError(code=code, message=message)


class _Violation(_EndRun):
    """The worker sent what the run's state does not allow; it is killed."""

    def __init__(self, what: str) -> None:
        super().__init__(
            ErrorCode.WORKER_CRASHED,
            f"the script worker broke the protocol ({what}); it was stopped",
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pool needs after a run: the result and whether the worker may be reused."""

    result: RunResult
    reusable: bool
    deadline: float


class Execution:
    """Drives one run: the conversation with the worker from `run` to `result`."""

    def __init__(self, request: RunRequest, host: Host) -> None:
        self._request = request
        self._host = host
        self._limits = request.limits
        self._redactor = Redactor(request.secrets)
        self._logs: list[str] = []
        self._log_left = request.limits.log_bytes
        self._log_closed = False
        self._trace: list[HttpTraceEntry] = []
        self._rows: list[list[JsonValue]] = []
        self._row_count = 0
        self._row_bytes = 0
        self._http_calls = 0

    async def drive(self, worker: WorkerProcess) -> Outcome:
        """Send the run, serve it until its result, and enforce its deadline."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._limits.wall_time_s
        reusable = False
        try:
            async with asyncio.timeout_at(deadline):
                await worker.send(protocol.encode(self._run_message()))
                final = await self._serve(worker)
            result = await self._finish(final)
            reusable = True
        except TimeoutError:
            result = await self._fail(
                RunStatus.TIMEOUT,
                RunError(code=ErrorCode.TIMEOUT, message=self._timeout_message()),
            )
        except _EndRun as end:
            result = await self._fail(RunStatus.ERROR, end.error)
        except protocol.ProtocolError:
            code = await _exit_code(worker)
            message = f"the script worker stopped unexpectedly (exit status {code})"
            result = await self._fail(
                RunStatus.ERROR, RunError(code=ErrorCode.WORKER_CRASHED, message=message)
            )
        duration_ms = round((loop.time() - started) * 1000, 3)
        return Outcome(result.model_copy(update={"duration_ms": duration_ms}), reusable, deadline)

    def _timeout_message(self) -> str:
        return f"the script did not finish within its deadline of {self._limits.wall_time_s:g} s"

    def _run_message(self) -> dict[str, Any]:
        request = self._request
        return {
            "t": "run",
            "script": request.script,
            "mode": request.mode.value,
            "metadata": request.metadata.model_dump(mode="json", by_alias=True),
            "limits": self._limits.model_dump(mode="json"),
            "chunk_rows": CHUNK_ROWS,
        }

    async def _serve(self, worker: WorkerProcess) -> dict[str, Any]:
        # While the run goes on: logs, rows and host calls, then its one result. During a host
        # call the worker waits for the reply, and nothing is read until it is sent.
        while True:
            message = await worker.read()
            kind = message.get("t")
            if kind == "log":
                self._take_log(message.get("line"))
            elif kind == "rows":
                self._row_bytes += worker.last_size
                await self._take_rows(message.get("columns"), message.get("rows"))
            elif kind == "call":
                reply = await self._call(message)
                await worker.send(protocol.encode(reply))
            elif kind == "result":
                if worker.last_size > RESULT_BYTES:
                    raise _EndRun(ErrorCode.RESULT_LIMIT, "the result is larger than 64 MiB")
                self._row_bytes += worker.last_size
                return message
            else:
                raise _Violation(f"a {str(kind)[:40]!r} message while the script runs")

    def _take_log(self, line: object) -> None:
        if not isinstance(line, str):
            raise _Violation("a log line that is not text")
        if self._log_closed:
            return
        if len(line) > self._log_left:
            # The worker caps logs too; whatever it sends past the cap is dropped here.
            self._log_closed = True
            self._logs.append(LOG_TRUNCATED)
            return
        self._log_left -= len(line)
        self._logs.append(line)

    async def _take_rows(self, columns: object, rows: object) -> None:
        if type(columns) is not list or not all(type(name) is str for name in columns):
            raise _Violation("column names that are not text")
        if type(rows) is not list:
            raise _Violation("rows that are not a list")
        scalars = _SCALARS.issuperset
        for row in rows:
            if type(row) is not list or not scalars(map(type, row)):
                raise _Violation("a row that is not a list of plain values")
        self._row_count += len(rows)
        cap = self._limits.result_rows
        if cap is not None and self._row_count > cap:
            raise _EndRun(ErrorCode.RESULT_LIMIT, f"the result has more than {cap} rows")
        if self._host.rows is not None:
            # Streamed rows leave before the result exists: redacted on their way out.
            redact = self._redactor
            await self._host.rows.write([redact.text(c) for c in columns], redact.rows(rows))
            return
        if self._row_bytes > RESULT_BYTES:
            raise _EndRun(ErrorCode.RESULT_LIMIT, "the result is larger than 64 MiB")
        self._rows.extend(rows)

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        call_id = message.get("id")
        args = message.get("args")
        op = message.get("op")
        try:
            if not isinstance(args, dict):
                raise HostCallError("bad_call", "malformed host call")
            value = await self._dispatch(str(op), args)
        except HostCallError as exc:
            self._trace.extend(exc.trace)
            return {
                "t": "reply",
                "id": call_id,
                "error": {"code": exc.code, "message": exc.message},
            }
        return {"t": "reply", "id": call_id, "ok": value}

    async def _dispatch(self, op: str, args: dict[str, Any]) -> JsonValue:
        host = self._host
        if op == "http.request":
            return await self._http(args)
        if op in ("state.get", "state.set"):
            if host.state is None:
                raise HostCallError("unavailable", "DOMO.getState/setState are not available here")
            key = str(args.get("key"))
            if op == "state.get":
                return await host.state.get(key)
            await host.state.set(key, args.get("value"))
            return None
        if op.startswith("dataset."):
            return await self._dataset(op, args)
        if op.startswith("sql."):
            if host.sql is None:
                raise HostCallError("unavailable", "sql.* is not available to this run")
            return await host.sql.call(op.removeprefix("sql."), args)
        if op in ("aws.client", "aws.put", "aws.get"):
            return await self._aws(op, args)
        raise HostCallError("unknown_call", f"the host does not offer {op!r}")

    async def _dataset(self, op: str, args: dict[str, Any]) -> JsonValue:
        datasets = self._host.datasets
        if datasets is None:
            raise HostCallError("unavailable", "datasets are not available to this run")
        if op == "dataset.list":
            return list(await datasets.list())
        dataset_id = str(args.get("id"))
        if op == "dataset.get":
            return await datasets.describe(dataset_id)
        if op == "dataset.query":
            offset, limit = args.get("offset", 0), args.get("limit")
            if type(offset) is not int or offset < 0:
                raise HostCallError("bad_call", "offset must be a whole number of rows, 0 or more")
            if limit is not None and (type(limit) is not int or limit < 1):
                raise HostCallError("bad_call", "limit must be a whole number of rows, 1 or more")
            return await datasets.query(dataset_id, str(args.get("sql")), offset, limit)
        raise HostCallError("unknown_call", f"the host does not offer {op!r}")

    async def _aws(self, op: str, args: dict[str, Any]) -> JsonValue:
        if self._host.aws is None:
            raise HostCallError("unavailable", "aws is not available to this run")
        secret = str(args.get("secret", ""))
        # The secret key is a secret of the run from now on, wherever the script puts it.
        self._redactor = self._redactor.with_secrets([secret])
        if op == "aws.client":
            return None
        self._count_http_call()
        endpoint = args.get("endpoint")
        request = ObjectRequest(
            method="PUT" if op == "aws.put" else "GET",
            region=str(args.get("region", "")),
            access_key=str(args.get("key", "")),
            secret_key=secret,
            path=str(args.get("path", "")),
            name=str(args.get("name", "")),
            body=str(args.get("value", "")) if op == "aws.put" else None,
            endpoint=None if endpoint is None else str(endpoint),
        )
        response = await self._host.aws.send(request, max_body_bytes=self._limits.response_bytes)
        self._trace.extend(response.trace)
        return None if op == "aws.put" else response.body

    def _count_http_call(self) -> None:
        self._http_calls += 1
        cap = self._limits.http_calls
        if self._http_calls > cap:
            raise _EndRun(ErrorCode.HTTP_CALL_LIMIT, f"the script made more than {cap} HTTP calls")

    async def _http(self, args: dict[str, Any]) -> JsonValue:
        if self._host.http is None:
            raise HostCallError(ErrorCode.EGRESS_REFUSED, "this run may not make HTTP requests")
        self._count_http_call()
        headers = args.get("headers") or []
        request = HttpRequest(
            method=str(args.get("method", "GET")).upper(),
            url=str(args.get("url", "")),
            headers=tuple((str(name), str(value)) for name, value in headers),
            body=None if args.get("body") is None else str(args["body"]),
        )
        response = await self._host.http.send(request, max_body_bytes=self._limits.response_bytes)
        self._trace.extend(response.trace)
        return {
            "status": response.status,
            "headers": [list(pair) for pair in response.headers],
            "body": response.body,
        }

    async def _finish(self, final: dict[str, Any]) -> RunResult:
        try:
            status = RunStatus(str(final.get("status")))
            error = RunError.model_validate(final["error"]) if final.get("error") else None
            columns = [Column.model_validate(column) for column in final.get("columns") or []]
            auth = AuthOutcome.model_validate(final["auth"]) if final.get("auth") else None
            discovery = final.get("discovery")
            discovery = Discovery.model_validate(discovery) if discovery else None
        except (ValueError, ValidationError, TypeError):
            raise _Violation("a malformed result") from None
        if status not in _FINAL_STATUSES:
            raise _Violation("a result with a status the worker may not report")
        if status is RunStatus.SUCCESS and final.get("rows"):
            await self._take_rows([c.name for c in columns], final["rows"])
        rows: list[list[JsonValue]] = []
        if self._host.rows is not None:
            if status is RunStatus.SUCCESS:
                await self._host.rows.finish(self._redactor.columns(columns))
            else:
                await self._host.rows.abort()
        elif status is RunStatus.SUCCESS:
            rows = finalize_rows(columns, self._rows)
        return self._result(
            status,
            error,
            auth=auth,
            columns=columns if status is RunStatus.SUCCESS else [],
            rows=rows,
            discovery=discovery,
        )

    async def _fail(self, status: RunStatus, error: RunError) -> RunResult:
        if self._host.rows is not None:
            await self._host.rows.abort()
        return self._result(status, error)

    def _result(
        self,
        status: RunStatus,
        error: RunError | None,
        *,
        auth: AuthOutcome | None = None,
        columns: list[Column] | None = None,
        rows: list[list[JsonValue]] | None = None,
        discovery: Discovery | None = None,
    ) -> RunResult:
        result = RunResult(
            status=status,
            auth=auth,
            columns=columns or [],
            rows=rows or [],
            logs=self._logs,
            http=self._trace,
            error=error,
            discovery=discovery,
        )
        # The one place a run's strings are scrubbed of its secrets (THREATS S1).
        return self._redactor.result(result)


async def _exit_code(worker: WorkerProcess) -> int | None:
    try:
        async with asyncio.timeout(1):
            return await worker.process.wait()
    except TimeoutError:
        return None
