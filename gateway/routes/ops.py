"""Operations endpoints: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Final

import structlog
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.auth import public
from gateway.keys import ENGINE, METRICS, OPENAPI, POOL
from gateway.metrics import CONTENT_TYPE_LATEST
from gateway.problems import ProblemError

# Long enough for a database that is busy (one SQLite connection shared by every request),
# short enough for a probe's own timeout.
DATABASE_CHECK_TIMEOUT_S: Final = 5.0

log = structlog.get_logger(__name__)


@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """The service can take work: workers are up and the database answers.

    Raises:
        ProblemError: not ready (503).
    """
    stats = request.app[POOL].stats()
    if stats.idle + stats.busy == 0:
        raise _not_ready("no script worker is running")
    if not await _database_answers(request.app):
        raise _not_ready("the database does not answer")
    return web.json_response({"status": "ready", "workers": stats.idle + stats.busy})


def _not_ready(detail: str) -> ProblemError:
    return ProblemError("service_unavailable", detail, headers={"Retry-After": "5"})


async def _database_answers(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S), app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # The reason is for the operator's log, not for the probe's answer.
        log.warning("readiness_database_failed", error=type(exc).__name__)
        return False
    return True


@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    registry = request.app[METRICS]
    registry.observe_pool(request.app[POOL].stats())
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def openapi(request: web.Request) -> web.Response:
    """The API description (the same file as `openapi.yaml` at the repository root)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/yaml")


def register(app: web.Application) -> None:
    """Add the operations routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.yaml", openapi)
