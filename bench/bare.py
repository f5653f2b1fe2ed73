"""The bare aiohttp handler the gateway's action endpoint is compared with, in its own process.

`python -m bench.bare UPSTREAM_URL` serves `POST /` on 127.0.0.1 (a free port, printed on
stdout) until its stdin closes: each request makes the same upstream call the benchmark's
action script makes, through one shared `aiohttp.ClientSession`, and answers the same first
cell as JSON. No logging, no metrics, no database: what any aiohttp service costs at least.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Final

from aiohttp import ClientSession, web

from bench.upstream import stdin_closed

UPSTREAM: Final = web.AppKey("upstream", str)
SESSION: Final = web.AppKey("session", ClientSession)


def first_cell(answer: dict[str, list[dict[str, object]]]) -> object:
    """The cell the action script puts in its datagrid (`bench.upstream.BODY`'s first name)."""
    return answer["items"][0]["name"]


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    async with request.app[SESSION].get(request.app[UPSTREAM]) as response:
        answer = await response.json()
    return web.json_response(first_cell(answer))


async def serve(upstream: str) -> None:
    """Serve on 127.0.0.1 until stdin closes."""
    app = web.Application()
    app[UPSTREAM] = upstream
    app.router.add_post("/", _handle)
    async with ClientSession() as session:
        app[SESSION] = session
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            print(runner.addresses[0][1], flush=True)
            await stdin_closed()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sys.argv[1]))
