"""The application factory: wiring only, no I/O until the app starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from aiohttp import web

from gateway.auth import authenticate
from gateway.egress import AddressPolicy, EgressClient
from gateway.identity.service import IdentityService
from gateway.keys import EGRESS, ENGINE, IDENTITY, METRICS, OPENAPI, POOL, SETTINGS
from gateway.metrics import Metrics
from gateway.middlewares import problems, request_context
from gateway.routes import register_routes
from gateway.settings import Settings
from gateway.store.engine import create_engine, database_url_for
from gateway.store.migrate import upgrade
from runtime.pool import PoolConfig, WorkerPool

MAX_BODY_BYTES = 16 * 1024 * 1024


def create_app(settings: Settings) -> web.Application:
    """Build the gateway application for `settings`."""
    app = web.Application(
        # Order matters: the request context (id, log line, metrics) wraps everything, so
        # even a problem rendered below is logged and counted with its final status; problem
        # rendering wraps authentication, so a refused token is a proper 401 problem.
        middlewares=[request_context, problems, authenticate],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_openapi_document)
    app.cleanup_ctx.append(_worker_pool)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_egress_client)
    register_routes(app)
    return app


@asynccontextmanager
async def _openapi_document(app: web.Application) -> AsyncIterator[None]:
    app[OPENAPI] = (resources.files("gateway") / "openapi.yaml").read_bytes()
    yield


@asynccontextmanager
async def _worker_pool(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Workers start before any secret is decrypted: they inherit nothing but the pipe.
    pool = WorkerPool(
        PoolConfig(size=settings.workers, address_space_mb=settings.worker_address_space_mb)
    )
    await pool.start()
    app[POOL] = pool
    try:
        yield
    finally:
        await pool.close()


@asynccontextmanager
async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url_for(settings.database_url, settings.data_dir))
    try:
        await upgrade(engine)
        app[ENGINE] = engine
        app[IDENTITY] = IdentityService(engine)
        yield
    finally:
        await engine.dispose()


@asynccontextmanager
async def _egress_client(app: web.Application) -> AsyncIterator[None]:
    client = egress_client_for(app[SETTINGS])
    app[EGRESS] = client
    try:
        yield
    finally:
        await client.close()


def egress_client_for(settings: Settings) -> EgressClient:
    """The shared egress client under the operator's address policy."""
    policy = AddressPolicy(
        allow_private=settings.egress_allow_private,
        allowed_networks=settings.egress_allowed_networks,
        resolve=settings.egress_resolve,
    )
    ca_file = str(settings.egress_ca_file) if settings.egress_ca_file else None
    return EgressClient(policy, ca_file=ca_file)
