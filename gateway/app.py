"""The application factory: wiring only, no I/O until the app starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from gateway.egress import AddressPolicy, EgressClient
from gateway.keys import EGRESS, POOL, SETTINGS
from gateway.settings import Settings
from runtime.pool import PoolConfig, WorkerPool


def create_app(settings: Settings) -> web.Application:
    """Build the gateway application for `settings`."""
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_worker_pool)
    app.cleanup_ctx.append(_egress_client)
    app.router.add_get("/healthz", _healthz)
    return app


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


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
