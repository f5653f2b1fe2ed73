"""A URL the script already percent-encoded reaches the upstream byte for byte."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import HttpRequest


async def test_encoded_query_is_sent_unchanged() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/sign", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with EgressClient(AddressPolicy(allow_private=True)) as client:
            session = client.session(None)
            base = str(server.make_url("/sign"))
            await session.send(
                HttpRequest("GET", base + "?q=a%20b%26c%3Dd%2F%C3%A9%3F&sig=AbC%2B%2F%3D"),
                max_body_bytes=1000,
            )
            await session.send(HttpRequest("GET", base + "?q=a b/é"), max_body_bytes=1000)
    finally:
        await server.close()
    assert seen == [
        "/sign?q=a%20b%26c%3Dd%2F%C3%A9%3F&sig=AbC%2B%2F%3D",
        "/sign?q=a%20b/%C3%A9",
    ]
