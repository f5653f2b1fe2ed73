"""Every endpoint module's `register` function, collected in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.routes import (
    accounts,
    actions,
    apps,
    connectors,
    datasets,
    domo,
    identity,
    jobs,
    oauth,
    ops,
    runs,
    schedules,
)


def register_routes(app: web.Application) -> None:
    """Add every route of the gateway to `app`."""
    ops.register(app)
    identity.register(app)
    connectors.register(app)
    actions.register(app)
    runs.register(app)
    accounts.register(app)
    oauth.register(app)
    apps.register(app)
    domo.register(app)
    datasets.register(app)
    jobs.register(app)
    schedules.register(app)
