"""The runtime's request and result types, shared by the pool, the gateway and the CLI."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

JsonValue = Any
"""A value that JSON can carry (the runtime never hands out anything else)."""

MiB: Final = 1024 * 1024


class RunMode(StrEnum):
    """Which entry point of a connector a run executes."""

    PROCESS = "process"
    AUTH = "auth"
    DISCOVERY = "discovery"


class RunStatus(StrEnum):
    """How a run ended (SPEC 4.3)."""

    SUCCESS = "success"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"


class ColumnType(StrEnum):
    """Column types of results and datasets."""

    STRING = "STRING"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    DECIMAL = "DECIMAL"
    DATE = "DATE"
    DATETIME = "DATETIME"
    BOOLEAN = "BOOLEAN"


class ErrorCode(StrEnum):
    """The gateway's own run error codes (SPEC 4.3); `datagrid.error` codes are the script's."""

    SYNTAX_ERROR = "syntax_error"
    SCRIPT_EXCEPTION = "script_exception"
    AUTH_NOT_REPORTED = "auth_not_reported"
    BAD_CELL = "bad_cell"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    EGRESS_REFUSED = "egress_refused"
    HTTP_CALL_LIMIT = "http_call_limit"
    RESULT_LIMIT = "result_limit"
    WORKER_CRASHED = "worker_crashed"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Model):
    """Per-run limits (SPEC 3.1); the defaults are those of an action run."""

    wall_time_s: float = Field(default=30.0, gt=0, le=24 * 3600)
    memory_mb: int = Field(default=64, ge=8, le=4096)
    stack_kb: int = Field(default=1024, ge=64, le=1024)
    http_calls: int = Field(default=100, ge=0)
    response_bytes: int = Field(default=10 * MiB, ge=0)
    log_bytes: int = Field(default=1 * MiB, ge=0)
    result_rows: int | None = Field(default=10_000, ge=0)
    """None: rows are streamed to the run's row sink without a cap (jobs)."""


class Metadata(_Model):
    """What a script sees as the `metadata` global."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    account: dict[str, JsonValue] = Field(default_factory=dict)
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    report: str | None = None
    days: int = 1
    last_run_date: str | None = Field(default=None, serialization_alias="lastRunDate")
    baseurl: str | None = None
    job_id: str | None = Field(default=None, serialization_alias="jobId")
    """The job the run is an attempt of (None outside jobs). It is the same on every attempt
    and every gateway, so a script sends it as the idempotency key of its side effects."""
    attempt: int | None = None
    """Which attempt of its job the run is, from 1 (None outside jobs)."""


class RunRequest(_Model):
    """One script execution handed to the pool."""

    script: str
    mode: RunMode = RunMode.PROCESS
    metadata: Metadata = Field(default_factory=Metadata)
    limits: Limits = Field(default_factory=Limits)
    secrets: tuple[str, ...] = ()
    """Values replaced by `[redacted]` in everything the run returns."""
    tenant: str = "local"
    """Whose queue the run waits in (fair scheduling across customers)."""


class Column(_Model):
    """One result column."""

    name: str
    type: ColumnType


class RunError(_Model):
    """Why a run did not succeed."""

    code: str | int
    message: str
    line: int | None = None


class AuthOutcome(_Model):
    """What an auth script reported."""

    success: bool
    message: str | None = None


class HttpTraceEntry(_Model):
    """One request or redirect hop made for a run; never bodies or credentials."""

    method: str
    url: str
    status: int | None
    duration_ms: float
    error: str | None = None


class DiscoveryOption(_Model):
    """One `discovery.addOption` value."""

    value: str
    label: str


class Discovery(_Model):
    """What a discovery script published."""

    options: list[DiscoveryOption] = Field(default_factory=list)
    tree: JsonValue = None


class RunResult(_Model):
    """The one structured outcome of a run (SPEC 4.3)."""

    status: RunStatus
    auth: AuthOutcome | None = None
    columns: list[Column] = Field(default_factory=list)
    rows: list[list[JsonValue]] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)
    http: list[HttpTraceEntry] = Field(default_factory=list)
    error: RunError | None = None
    discovery: Discovery | None = None
    duration_ms: float = 0.0


class SyntaxCheck(_Model):
    """Whether a script parses; if not, the error a run would report and where (SPEC 4.3)."""

    ok: bool
    message: str | None = None
    line: int | None = None
    column: int | None = None
