"""RFC 9457 problem details: the one mapping from errors to HTTP answers (SPEC 4, 4.3)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:gateway:problem:"

# code -> (status, title). Codes are stable: clients and our own checks match on them.
PROBLEMS: Final[Mapping[str, tuple[HTTPStatus, str]]] = {
    "unauthenticated": (HTTPStatus.UNAUTHORIZED, "Authentication required"),
    "forbidden": (HTTPStatus.FORBIDDEN, "Forbidden"),
    "scope_not_allowed": (HTTPStatus.FORBIDDEN, "The action's scope does not allow this caller"),
    "account_not_accessible": (HTTPStatus.FORBIDDEN, "The account is not accessible"),
    "not_found": (HTTPStatus.NOT_FOUND, "Not found"),
    "action_not_found": (HTTPStatus.NOT_FOUND, "Action not found"),
    "method_not_allowed": (HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed"),
    "not_acceptable": (HTTPStatus.NOT_ACCEPTABLE, "No acceptable representation"),
    "sql_timeout": (HTTPStatus.REQUEST_TIMEOUT, "The query took too long"),
    "conflict": (HTTPStatus.CONFLICT, "Conflict"),
    "account_needs_reauth": (HTTPStatus.CONFLICT, "The account needs to be authorised again"),
    "payload_too_large": (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Payload too large"),
    "unsupported_media_type": (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
    "invalid_json": (HTTPStatus.BAD_REQUEST, "The body is not valid JSON"),
    "bad_request": (HTTPStatus.BAD_REQUEST, "Bad request"),
    "validation_failed": (HTTPStatus.UNPROCESSABLE_ENTITY, "The request is not valid"),
    "invalid_parameters": (HTTPStatus.UNPROCESSABLE_ENTITY, "Invalid parameters"),
    "alias_not_mapped": (HTTPStatus.UNPROCESSABLE_ENTITY, "The account alias is not mapped"),
    "provider_mismatch": (HTTPStatus.UNPROCESSABLE_ENTITY, "The account's provider does not match"),
    "script_failed": (HTTPStatus.UNPROCESSABLE_ENTITY, "The script failed"),
    "credentials_rejected": (HTTPStatus.UNPROCESSABLE_ENTITY, "The credentials were rejected"),
    "egress_refused": (HTTPStatus.UNPROCESSABLE_ENTITY, "The script called a refused host"),
    "idempotency_key_reused": (HTTPStatus.UNPROCESSABLE_ENTITY, "Idempotency key reused"),
    "sql_refused": (HTTPStatus.UNPROCESSABLE_ENTITY, "The query was refused"),
    "upload_refused": (HTTPStatus.UNPROCESSABLE_ENTITY, "The uploaded file was refused"),
    "app_bundle_refused": (HTTPStatus.UNPROCESSABLE_ENTITY, "The app archive was refused"),
    "too_many_requests": (HTTPStatus.TOO_MANY_REQUESTS, "Too many runs are waiting"),
    "internal_error": (HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error"),
    "upstream_unavailable": (HTTPStatus.BAD_GATEWAY, "The upstream API is unavailable"),
    "service_unavailable": (HTTPStatus.SERVICE_UNAVAILABLE, "The service is busy"),
    "deadline_exceeded": (HTTPStatus.GATEWAY_TIMEOUT, "The script ran past its deadline"),
}

# Statuses aiohttp raises by itself (router, body size) and the code each becomes.
HTTP_EXCEPTION_CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ProblemError(Exception):
    """An error with a stable problem `code`; raised anywhere in the HTTP layer.

    `detail` is shown to the caller, so it must never hold a secret or server internals.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if code not in PROBLEMS:
            raise ValueError(f"unknown problem code {code!r}")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    @property
    def status(self) -> HTTPStatus:
        """The HTTP status of this problem."""
        return PROBLEMS[self.code][0]


def problem_body(
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem."""
    status, title = PROBLEMS[code]
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": int(status),
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra or {})
    return body


def problem_response(
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    """An `application/problem+json` response."""
    body = problem_body(code, detail, instance=instance, errors=errors, extra=extra)
    return web.Response(
        status=body["status"],
        text=json.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )
