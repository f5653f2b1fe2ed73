"""Fixtures of the egress tests: fake upstreams on loopback and clients with fake DNS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from pytest_aiohttp import AiohttpServer

from gateway.egress import AddressPolicy, EgressClient
from tests.gateway.egress.fakes import (
    SEEN,
    FakeResolver,
    MakeClient,
    StartUpstream,
    Upstream,
    make_upstream_app,
)


@pytest.fixture
def start_upstream(aiohttp_server: AiohttpServer) -> StartUpstream:
    """Start fake upstreams on loopback (closed by pytest-aiohttp after the test)."""

    async def start(host: str = "127.0.0.1") -> Upstream:
        app = make_upstream_app()
        server = await aiohttp_server(app, host=host)
        assert server.port is not None
        return Upstream(port=server.port, host=host, seen=app[SEEN])

    return start


@pytest.fixture
async def upstream(start_upstream: StartUpstream) -> Upstream:
    """One fake upstream on 127.0.0.1."""
    return await start_upstream()


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Build egress clients with fake DNS; all are closed after the test."""
    clients: list[EgressClient] = []

    def make(
        policy: AddressPolicy,
        *,
        names: Mapping[str, str] | None = None,
        resolver: FakeResolver | None = None,
        connect_timeout: float = 5,
        total_timeout: float = 10,
    ) -> EgressClient:
        client = EgressClient(
            policy,
            connect_timeout=connect_timeout,
            total_timeout=total_timeout,
            resolver=resolver or FakeResolver(names or {}),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
