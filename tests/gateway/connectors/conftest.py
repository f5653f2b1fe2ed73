"""Fixtures of the connector tests: callers of two customers, fakes, PNGs and bodies."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.models import ConnectorCreate
from gateway.identity.principal import Principal, Role
from gateway.settings import Settings
from tests.dbfixtures import make_customer, make_user
from tests.domo_fakes import SAMPLECRM, DomoHosts
from tests.gateway.callers import Caller, Client

SCRIPTS = Path(__file__).parent.parent.parent / "scripts"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One worker; scripts may reach the fakes on loopback."""
    return Settings(data_dir=tmp_path / "data", workers=1, egress_allow_private=True)


def settings_with_domo_hosts(tmp_path: Path, domo_hosts: DomoHosts) -> Settings:
    """As `settings`, with the documentation's hosts routed to their local fakes."""
    return Settings(
        data_dir=tmp_path / "data",
        workers=1,
        egress_allow_private=True,
        egress_connect_to=domo_hosts.connect_to,
        egress_ca_file=domo_hosts.ca_file,
    )


def connector_body(**changes: Any) -> dict[str, Any]:
    """A valid create body: the Sample CRM example's definition, basic auth, one report."""
    body: dict[str, Any] = json.loads((SAMPLECRM / "connector.json").read_text())
    body.update(changes)
    return body


async def create_connector(client: Client, caller: Caller, **changes: Any) -> dict[str, Any]:
    """Create a connector over HTTP and return it."""
    response = await client.post(
        "/api/v1/connectors", headers=caller.headers, json=connector_body(**changes)
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def put_script(
    client: Client, caller: Caller, guid: str, target: str, source: str
) -> dict[str, Any]:
    """Upload a script (`auth`, `process`, `discovery/<param>`) and return its summary."""
    response = await client.put(
        f"/api/v1/connectors/{guid}/scripts/{target}",
        headers={**caller.headers, "Content-Type": "application/javascript"},
        data=source.encode(),
    )
    assert response.status == HTTPStatus.OK, await response.text()
    info: dict[str, Any] = await response.json()
    return info


def script(name: str) -> str:
    """A script of `tests/scripts`, or of the Sample CRM example (`samplecrm/auth.js`)."""
    if name.startswith("samplecrm/"):
        return (SAMPLECRM / name.removeprefix("samplecrm/")).read_text()
    return (SCRIPTS / name).read_text()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of this size (all black)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = (b"\x00" + b"\x00" * (3 * width)) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


@dataclass
class Upstream:
    """A plain-HTTP fake API on 127.0.0.1 and what it saw."""

    port: int
    seen: list[dict[str, str]]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> Upstream:
    """Echoes who called: `/whoami` answers the `X-Api-Key` header's owner."""
    seen: list[dict[str, str]] = []

    async def whoami(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.headers.get("X-Api-Key") != "k-123-secret":
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response([{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}])

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    server = await aiohttp_server(app, host="127.0.0.1")
    assert server.port is not None
    return Upstream(server.port, seen)


# --- the service tests' people and definitions (no HTTP) ------------------------------


@dataclass(frozen=True)
class People:
    """Users of three customers: acme (owner, colleague, admin), globex, initech."""

    owner: Principal
    colleague: Principal
    admin: Principal
    outsider: Principal
    platform: Principal


@pytest.fixture
async def people(engine: AsyncEngine) -> People:
    """Three customers' users, made in the test's database."""
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        globex = await make_customer(connection)
        initech = await make_customer(connection)
        owner = await make_user(connection, acme)
        colleague = await make_user(connection, acme)
        admin = await make_user(connection, acme, role="admin")
        outsider = await make_user(connection, globex, role="admin")
        platform = await make_user(connection, initech, role="platform_admin")
    return People(
        Principal(owner, acme, Role.MEMBER),
        Principal(colleague, acme, Role.MEMBER),
        Principal(admin, acme, Role.ADMIN),
        Principal(outsider, globex, Role.ADMIN),
        Principal(platform, initech, Role.PLATFORM_ADMIN),
    )


def definition(key: str = "crm", **changes: object) -> ConnectorCreate:
    """An action definition with Basic auth, changed by `changes`."""
    body: dict[str, object] = {
        "kind": "action",
        "name": "CRM",
        "key": key,
        "auth": {"method": "basic"},
        "allowed_hosts": ["api.example.com"],
        **changes,
    }
    return ConnectorCreate.model_validate(body, strict=False)
