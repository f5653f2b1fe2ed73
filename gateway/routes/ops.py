"""Operations endpoints: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import METRICS, OPENAPI, POOL
from gateway.metrics import CONTENT_TYPE_LATEST
from gateway.problems import ProblemError


async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The service can take work: workers are up (and, with the store, the database answers).

    Raises:
        ProblemError: not ready (503).
    """
    stats = request.app[POOL].stats()
    if stats.idle + stats.busy == 0:
        raise ProblemError(
            "service_unavailable", "no script worker is running", headers={"Retry-After": "5"}
        )
    return web.json_response({"status": "ready", "workers": stats.idle + stats.busy})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    registry = request.app[METRICS]
    registry.observe_pool(request.app[POOL].stats())
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """The API description (the same file as `openapi.yaml` at the repository root)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/yaml")


def register(app: web.Application) -> None:
    """Add the operations routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.yaml", openapi)
