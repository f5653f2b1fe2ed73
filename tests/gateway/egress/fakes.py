"""Fakes for the egress tests: upstreams on 127.0.0.1, a fake DNS resolver, helpers.

Nothing here sends a packet off this machine: upstreams listen on loopback, and every
client the tests build gets a `FakeResolver`, so no test asks a real DNS server anything.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import HostCallError, HttpRequest, HttpResponse

MiB: Final = 1024 * 1024
SEEN: Final = web.AppKey("seen", list["Seen"])


@dataclass(frozen=True, slots=True)
class Seen:
    """One request a fake upstream received."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass(slots=True)
class Upstream:
    """A running fake upstream and what it has seen."""

    port: int
    host: str = "127.0.0.1"
    seen: list[Seen] = field(default_factory=list)

    @property
    def origin(self) -> str:
        """`http://host:port`."""
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The `allowed_networks` entry admitting exactly this upstream."""
        return f"{self.host}:{self.port}"


class StartUpstream(Protocol):
    """Starts a fake upstream."""

    def __call__(self, host: str = "127.0.0.1") -> Awaitable[Upstream]:
        """Start one on `host`, any free port."""


class MakeClient(Protocol):
    """Builds an `EgressClient` with a `FakeResolver`, closed after the test."""

    def __call__(
        self,
        policy: AddressPolicy,
        *,
        names: Mapping[str, str] | None = None,
        resolver: FakeResolver | None = None,
        connect_timeout: float = 5,
        total_timeout: float = 10,
    ) -> EgressClient:
        """Build a client; `names` (or `resolver`) answers its DNS questions."""


class FakeResolver(AbstractResolver):
    """Resolves only the names it was given; records every question."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.calls: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the configured address, or fail like an unknown name."""
        self.calls.append((host, port))
        address = self.names.get(host)
        if address is None:
            raise OSError(socket.EAI_NONAME, "name not known")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        """Nothing to release."""


@web.middleware
async def _record(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    body = await request.read()
    seen = Seen(request.method, request.path_qs, CIMultiDict(request.headers), body)
    request.app[SEEN].append(seen)
    return await handler(request)


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"method": request.method, "host": request.host})


async def _redirect(request: web.Request) -> web.Response:
    status = int(request.query.get("status", "302"))
    to = request.query.get("to")
    return web.Response(status=status, headers={} if to is None else {"Location": to})


async def _chain(request: web.Request) -> web.Response:
    left = int(request.match_info["left"])
    if left == 0:
        return web.Response(text="end of chain")
    return web.Response(status=302, headers={"Location": f"/chain/{left - 1}"})


async def _stream(request: web.Request) -> web.StreamResponse:
    """Stream `bytes` zero bytes in 64 KiB chunks without ever holding them."""
    total = int(request.query["bytes"])
    response = web.StreamResponse()
    if "declare" in request.query:
        response.content_length = total
    await response.prepare(request)
    chunk = bytes(64 * 1024)
    try:
        for _ in range(total // len(chunk)):
            await response.write(chunk)
    except ConnectionResetError:
        pass  # the client hung up once it had enough: expected
    return response


async def _slow(request: web.Request) -> web.StreamResponse:
    """Answer after `seconds`, or send headers and then stall (`stall_body`)."""
    seconds = float(request.query.get("seconds", "30"))
    response = web.StreamResponse()
    if "stall_body" in request.query:
        await response.prepare(request)
        await response.write(b"first bytes")
    await asyncio.sleep(seconds)
    return response


async def _bytes(request: web.Request) -> web.Response:
    """Answer with the raw `hex` body and `type` content type."""
    body = bytes.fromhex(request.query.get("hex", ""))
    headers = {"Content-Type": request.query.get("type", "application/octet-stream")}
    response = web.Response(body=body, headers=headers)
    response.headers.add("X-Multi", "one")
    response.headers.add("X-Multi", "two")
    return response


def make_upstream_app() -> web.Application:
    """The fake upstream: echo, redirects, chains, streams, stalls and raw bodies."""
    app = web.Application(middlewares=[_record])
    app[SEEN] = []
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/redirect", _redirect)
    app.router.add_get("/chain/{left}", _chain)
    app.router.add_get("/stream", _stream)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/bytes", _bytes)
    return app


def admitting(*upstreams: Upstream, resolve: tuple[str, ...] = ()) -> AddressPolicy:
    """Private networks off; exactly these upstreams admitted by `allowed_networks`."""
    return AddressPolicy(allowed_networks=tuple(u.endpoint for u in upstreams), resolve=resolve)


async def get(
    client: EgressClient,
    url: str,
    *,
    allowed_hosts: tuple[str, ...] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    method: str = "GET",
    body: str | None = None,
    max_body_bytes: int = MiB,
    secrets: tuple[str, ...] = (),
) -> HttpResponse:
    """Send one request through a run session of `client`."""
    session = client.session(allowed_hosts, secrets=secrets)
    request = HttpRequest(method, url, headers, body)
    return await session.send(request, max_body_bytes=max_body_bytes)


async def refused(sending: Awaitable[HttpResponse]) -> HostCallError:
    """Await a send that must fail, and return its error."""
    with pytest.raises(HostCallError) as caught:
        await sending
    return caught.value
