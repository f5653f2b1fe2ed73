"""The middlewares, in the order `create_app` installs them (outermost first)."""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.accessline import close_line, open_line
from gateway.errors import GatewayError, ValidationFailed
from gateway.keys import METRICS, REQUEST_ID
from gateway.problems import HTTP_EXCEPTION_CODES, ProblemError, problem_response
from runtime.pool import PoolBusy, PoolClosed

log = structlog.get_logger(__name__)

_CLIENT_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def route_label(request: web.Request) -> str:
    """The route template (`/api/v1/runs/{id}`), never the raw path (bounded metric labels)."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, bind it to every log line, and log and count the request.

    The request's one line, `request_finished`, also holds what its work added (a run's id,
    status and duration: `gateway.accessline`).
    """
    supplied = request.headers.get("X-Request-ID", "")
    request_id = supplied if _CLIENT_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=request_id, method=request.method, path=request.path
    )
    started = time.perf_counter()
    status = 500
    line, token = open_line()
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = route_label(request)
        request.app[METRICS].observe_request(route, request.method, status, elapsed)
        close_line(token)
        log.info(
            "request_finished",
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            **line.fields,
        )


def _refuse_nul(request: web.Request) -> None:
    """Refuse a URL that decodes to a NUL: no id or name holds one, and PostgreSQL fails on it.

    Raises:
        ProblemError: `not_found` (404) for the path (it names nothing),
            `validation_failed` (422) for a query parameter.
    """
    if "\x00" in request.path:
        raise ProblemError("not_found", "no such resource")
    for name, value in request.query.items():
        if "\x00" in name or "\x00" in value:
            loc = ["query", name.replace("\x00", "%00")]
            message = "must not hold a NUL character"
            raise ProblemError(
                "validation_failed",
                f"query parameter {loc[1]!r} {message}",
                errors=[{"loc": loc, "msg": message, "type": "string_refused"}],
            )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as `application/problem+json` (SPEC 4)."""
    instance = request.path
    try:
        _refuse_nul(request)
        return await handler(request)
    except GatewayError as exc:
        log.info("request_refused", problem=exc.code)
        errors = exc.errors if isinstance(exc, ValidationFailed) else None
        retry = exc.retry_after
        headers = {"Retry-After": str(max(1, math.ceil(retry)))} if retry is not None else None
        return problem_response(
            exc.code, exc.detail, instance=instance, errors=errors, headers=headers, extra=exc.extra
        )
    except PoolBusy as exc:
        # The run queue is full: for this customer (429) or for everyone (503).
        code = "too_many_requests" if exc.tenant_full else "service_unavailable"
        return problem_response(
            code, str(exc), instance=instance, headers={"Retry-After": str(exc.retry_after)}
        )
    except PoolClosed:
        return problem_response(
            "service_unavailable",
            "the gateway is shutting down",
            instance=instance,
            headers={"Retry-After": "5"},
        )
    except ProblemError as exc:
        log.info("request_refused", problem=exc.code, status=int(exc.status))
        return problem_response(
            exc.code,
            exc.detail,
            instance=instance,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and successes raised as exceptions pass through
        code = HTTP_EXCEPTION_CODES.get(exc.status, "bad_request")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(code, _http_detail(exc), instance=instance, headers=headers)
    except Exception:
        request_id = request.get(REQUEST_ID, "")
        log.exception("request_failed")
        return problem_response(
            "internal_error",
            f"an internal error occurred; quote request id {request_id} when reporting it",
            instance=instance,
            extra={"request_id": request_id},
        )


def _http_detail(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "no such resource"
    if exc.status == 405:
        return "this method is not allowed here"
    if exc.status == 413:
        return "the request body is too large"
    return exc.reason
