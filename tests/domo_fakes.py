"""Local HTTPS fakes of the hosts the documentation's scripts call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from examples.samplecrm.api import PASSWORD, USERNAME, add_routes
from examples.tls import make_local_ca

__all__ = ["ACCESS_TOKEN", "PASSWORD", "SAMPLECRM", "USERNAME", "DomoHosts", "Fakes"]

SAMPLECRM = Path(__file__).parent.parent / "examples" / "samplecrm"
HOSTS = ("developer.domo.com", "na73.salesforce.com")
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQFakeSalesforceToken"


@dataclass
class Fakes:
    """What the fake hosts saw."""

    crm_requests: list[str] = field(default_factory=list)
    salesforce: list[dict[str, object]] = field(default_factory=list)


FAKES = web.AppKey("fakes", Fakes)


@web.middleware
async def _record_crm(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path == "/samplecrm":
        request.app[FAKES].crm_requests.append(request.headers.get("Authorization", ""))
    return await handler(request)


async def _salesforce(request: web.Request) -> web.Response:
    fakes = request.app[FAKES]
    fakes.salesforce.append(
        {
            "path": request.path,
            "query": dict(request.query),
            "authorization": request.headers.get("Authorization"),
            "body": await request.json(),
        }
    )
    return web.Response(status=204)


@dataclass(frozen=True)
class DomoHosts:
    """The running fakes, what they saw, and how to reach them.

    Attributes:
        seen: the requests the fakes received.
        ca_file: the CA that signed their certificate.
        endpoint: `127.0.0.1:PORT`, for `allowed_networks` (`--allow-network`).
        connect_to: `HOST:443:127.0.0.1:PORT` for each faked host (`--connect-to`).
    """

    seen: Fakes
    ca_file: Path
    endpoint: str
    connect_to: tuple[str, ...]


@pytest.fixture
async def domo_hosts(tmp_path: Path, aiohttp_server: AiohttpServer) -> DomoHosts:
    """developer.domo.com and na73.salesforce.com on 127.0.0.1, on any free port.

    Their certificate is signed by a CA of their own; reach them with `connect_to`.
    """
    ca = make_local_ca(tmp_path / "domo-ca", HOSTS)
    fakes = Fakes()
    app = web.Application(middlewares=[_record_crm])
    app[FAKES] = fakes
    add_routes(app)
    app.router.add_post("/services/data/v22.0/sobjects/Opportunity/{id}", _salesforce)
    server = await aiohttp_server(app, host="127.0.0.1", ssl=ca.server_context)
    port = server.port
    assert port is not None
    connect_to = tuple(f"{host}:443:127.0.0.1:{port}" for host in HOSTS)
    return DomoHosts(fakes, ca.ca_file, f"127.0.0.1:{port}", connect_to)
