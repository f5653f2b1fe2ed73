"""Errors of datasets and the SQL sandbox, free of HTTP; `gateway.middlewares` renders them."""

from __future__ import annotations

from gateway.errors import GatewayError


class SqlRefused(GatewayError):
    """A statement the sandbox does not run (not one SELECT, a refused function) or that failed."""

    code = "sql_refused"


class SqlTimeout(GatewayError):
    """A query interrupted at the sandbox's time limit."""

    code = "sql_timeout"


class UploadRefused(GatewayError):
    """An uploaded file DuckDB cannot load, or whose columns do not match the dataset's."""

    code = "upload_refused"


class UploadTooLarge(GatewayError):
    """An upload past the size cap (nothing of it is kept)."""

    code = "payload_too_large"


class UploadInterrupted(GatewayError):
    """The body ended before its declared length (the client went away): nothing is kept."""

    code = "bad_request"
